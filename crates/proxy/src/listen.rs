//! Listening sockets and the connections they accept: bind, accept, TLS handshake, then HTTP/1.1
//! or HTTP/2 served by hyper, with the idle timeout and graceful drain.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
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
use crate::conn::{expired, ConnCount, ConnState, Tracked};
use crate::forward::{self, ConnInfo};
use crate::observe::{self, Active};
use crate::stream::Accepted;
use crate::tls::ListenerTls;
use crate::Shared;

/// How long an idle connection stays open when its listener has gone from the state.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// While draining, how long a connection without a request in flight may stay quiet.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// One listener port, bound on every `--bind` address, and its accept loops.
pub(crate) struct RunningListener {
    pub(crate) protocol: Protocol,
    pub(crate) tls: Option<Arc<ListenerTls>>,
    /// The bound sockets, kept so that they can be handed to a process taking over (upgrade).
    sockets: Vec<Arc<TcpListener>>,
    accepts: Vec<JoinHandle<()>>,
    /// Set to true to ask this listener's connections to finish their requests and close.
    drain: watch::Sender<bool>,
    pub(crate) conns: Arc<ConnCount>,
}

impl RunningListener {
    /// Listens on `addrs` (one per bind address, all of the same port) and starts accepting;
    /// with `tls` for HTTPS and SSL listeners. A socket handed over by a previous process for
    /// one of the addresses is used instead of binding a new one.
    pub(crate) fn start(
        shared: Arc<Shared>,
        addrs: &[SocketAddr],
        protocol: Protocol,
        tls: Option<Arc<ListenerTls>>,
        inherited: &mut HashMap<SocketAddr, std::net::TcpListener>,
    ) -> Result<RunningListener, (SocketAddr, std::io::Error)> {
        let only_v6 = addrs.iter().any(|a| a.is_ipv4());
        let sockets = addrs
            .iter()
            .map(|addr| {
                let socket = match inherited.remove(addr) {
                    Some(socket) => socket
                        .set_nonblocking(true)
                        .and_then(|()| TcpListener::from_std(socket)),
                    None => bind(*addr, only_v6),
                };
                socket.map(Arc::new).map_err(|e| (*addr, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (drain, drain_rx) = watch::channel(false);
        let conns = Arc::new(ConnCount::default());
        let accepts = sockets
            .iter()
            .map(|socket| {
                tokio::spawn(accept_loop(
                    Arc::clone(&shared),
                    Arc::clone(socket),
                    protocol.is_http(),
                    tls.clone(),
                    drain_rx.clone(),
                    Arc::clone(&conns),
                ))
            })
            .collect();
        Ok(RunningListener {
            protocol,
            tls,
            sockets,
            accepts,
            drain,
            conns,
        })
    }

    /// The bound sockets with their addresses.
    pub(crate) fn sockets(&self) -> impl Iterator<Item = &TcpListener> {
        self.sockets.iter().map(|s| &**s)
    }

    /// Stops accepting at once (the sockets are closed in this process) and asks open
    /// connections to finish what they are doing and close. Returns a handle to wait for them.
    pub(crate) fn stop(self) -> Arc<ConnCount> {
        for accept in &self.accepts {
            accept.abort();
        }
        let _ = self.drain.send(true);
        self.conns
    }
}

fn bind(addr: SocketAddr, only_v6: bool) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    // A restarted node must be able to bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // `--bind ::` alone is dual-stack; beside an IPv4 bind address, IPv6 only, so that both
        // can hold the port.
        socket.set_only_v6(only_v6)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: Arc<TcpListener>,
    http: bool,
    tls: Option<Arc<ListenerTls>>,
    drain: watch::Receiver<bool>,
    conns: Arc<ConnCount>,
) {
    let bound = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            tracing::error!(error = %e, "a listening socket has no address");
            return;
        }
    };
    let port = bound.port();
    let port_header = HeaderValue::from(port);
    let limits = &shared.config.limits;
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
        if shared.node_conns.open() >= limits.max_connections
            || conns.open() >= limits.max_listener_connections
        {
            // Over the limit: a reset at once, so that the client can go elsewhere, and the
            // connections already open keep their share of the node.
            shared.refused_connections.fetch_add(1, Ordering::Relaxed);
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            tracing::debug!(port, %client, "connection limit reached: connection refused");
            continue;
        }
        let _ = stream.set_nodelay(true);
        // A dual-stack socket sees IPv4 clients as ::ffff:a.b.c.d; the application sees a.b.c.d.
        let client = SocketAddr::new(client.ip().to_canonical(), client.port());
        let mut info = ConnInfo {
            client,
            client_value: crate::headers::client_value(client.ip()),
            tls: None,
            port,
            port_header: port_header.clone(),
            proto: if tls.is_some() { "https" } else { "http" },
        };
        let metrics = shared
            .runtime
            .load()
            .routes
            .get(&port)
            .map(|r| Arc::clone(&r.metrics));
        let accepted_at = std::time::Instant::now();
        let guard = (
            conns.enter(),
            shared.node_conns.enter(),
            Active::enter(metrics),
        );
        let shared = Arc::clone(&shared);
        // The config in force when the connection arrived: a policy change applies to new ones.
        let acceptor = tls.as_ref().map(|t| TlsAcceptor::from(t.config()));
        let drain = drain.clone();
        let local = stream
            .local_addr()
            .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()))
            .unwrap_or(bound);
        tokio::spawn(async move {
            let metrics = guard.2.metrics();
            match acceptor {
                None if http => {
                    if first_bytes(&shared, &stream, port, 0, &drain).await {
                        // Boxed: an idle connection's task stays small until a request comes.
                        Box::pin(serve(shared, stream, info, false, drain)).await
                    }
                }
                // Boxed, as every path that is not an idle HTTP connection's: the task's future is
                // as large as its largest state, and a TCP/SSL stream's inline made every idle
                // connection 4.5 KiB larger (bench/RESULTS.md).
                None => {
                    let accepted = Accepted {
                        client,
                        local,
                        port,
                        at: accepted_at,
                        tls: None,
                    };
                    Box::pin(crate::stream::serve(shared, stream, accepted)).await
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        shared.config.handshake_timeout,
                        acceptor.accept(stream),
                    );
                    tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(mut tls)) => {
                                let session = tls.get_ref().1;
                                if let Some(m) = metrics {
                                    observe::handshake(m, session);
                                }
                                info.tls = observe::tls_fields(session);
                                if http {
                                    // Inline, not in a function of its own: the stream is then
                                    // held once by this task while it waits for first bytes (a
                                    // second copy measured 2.5 KiB more per idle connection).
                                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                                    let buffered = tls
                                        .get_mut()
                                        .1
                                        .process_new_packets()
                                        .map_or(1, |s| s.plaintext_bytes_to_read());
                                    if first_bytes(&shared, tls.get_ref().0, port, buffered, &drain).await {
                                        Box::pin(serve(shared, tls, info, h2, drain)).await
                                    }
                                } else {
                                    let accepted = Accepted { client, local, port, at: accepted_at, tls: info.tls };
                                    Box::pin(crate::stream::serve(shared, tls, accepted)).await
                                }
                            }
                            Ok(Err(e)) => {
                                if let Some(m) = metrics {
                                    m.tls_failed.inc();
                                }
                                tracing::debug!(%client, error = %e, "TLS handshake failed")
                            }
                            Err(_) => {
                                if let Some(m) = metrics {
                                    m.tls_failed.inc();
                                }
                                tracing::debug!(%client, "TLS handshake timed out")
                            }
                        },
                        // Nothing was asked of an instance yet: a drain waits for it only
                        // briefly (it was accepted, so its client is about to send a request).
                        () = drained_for(drain.clone(), DRAIN_GRACE) => {}
                    }
                }
            }
            drop(guard);
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
    let idle_timeout = idle_timeout(&shared, info.port);
    let info = Arc::new(info);
    let service = |state: &Arc<ConnState>| {
        let shared = Arc::clone(&shared);
        let state = Arc::clone(state);
        let drain = drain.clone();
        let info = Arc::clone(&info);
        service_fn(move |req| {
            let shared = Arc::clone(&shared);
            let info = Arc::clone(&info);
            let (in_flight, open) = state.request_started();
            let drain = drain.clone();
            async move {
                let resp = forward::serve(shared, info, req).await;
                drop(in_flight);
                resp.map(|mut r| {
                    // Draining: an HTTP/1 client's next request goes on a new connection.
                    if !h2 && *drain.borrow() && r.status() != http::StatusCode::SWITCHING_PROTOCOLS
                    {
                        r.headers_mut()
                            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    r.map(|body| body.holding(open))
                })
            }
        })
    };
    // The protocol is known (ALPN, or HTTP/1.1 on a plain listener): no sniffing of the first
    // bytes, which would run before the header read timeout starts and would let a plain
    // listener speak HTTP/2 with settings that are not fulcrum's.
    if h2 {
        let (io, state) = Tracked::http2_server(io);
        // Responses of concurrent streams leave together (see `coalesce`).
        let io = TokioIo::new(Coalesce::new(io));
        let conn = shared.h2.serve_connection(io, service(&state));
        // HTTP/2 heads arrive in frames that hyper bounds; the idle timeout covers a silent peer.
        drive(conn, drain, &state, idle_timeout, None).await;
    } else {
        let (io, state) = Tracked::new(io);
        let io = TokioIo::new(io);
        let conn = shared
            .h1
            .serve_connection(io, service(&state))
            .with_upgrades();
        let header_read = Some(shared.config.header_read_timeout);
        if let Some(e) = drive(conn, drain, &state, idle_timeout, header_read).await {
            // hyper answered a head it could not read itself (400, or 431 when too large),
            // before any route saw it: ELB counts and logs those too.
            if e.is_parse() || e.is_parse_too_large() {
                let status = if e.is_parse_too_large() { 431 } else { 400 };
                if let Some(route) = shared.runtime.load().routes.get(&info.port) {
                    observe::malformed(&shared, route, &info, status);
                }
            }
        }
    }
}

/// The idle timeout of the listener on `port` (its load balancer's `ConnectionSettings`).
fn idle_timeout(shared: &Shared, port: u16) -> Duration {
    shared
        .runtime
        .load()
        .routes
        .get(&port)
        .map_or(DEFAULT_IDLE, |r| r.idle_timeout)
}

/// A served connection that can be asked to finish its requests and close.
trait Drainable: Future<Output = hyper::Result<()>> {
    /// Whether to ask the connection itself to drain (HTTP/2: GOAWAY). HTTP/1 connections are
    /// not: hyper would close one between requests at once, with a request that just arrived
    /// unread; their answers say `Connection: close` instead (see `serve`), and one that stays
    /// quiet is closed after the grace.
    const DRAIN_ITSELF: bool;
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
    const DRAIN_ITSELF: bool = false;
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
    const DRAIN_ITSELF: bool = true;
    fn start_drain(self: Pin<&mut Self>) {
        self.graceful_shutdown()
    }
}

/// Runs a connection until it closes, idles out, takes too long over a request head, or is
/// drained. Returns the error it ended with, if any.
async fn drive<C: Drainable>(
    conn: C,
    mut drain: watch::Receiver<bool>,
    state: &ConnState,
    idle_timeout: Duration,
    header_read_timeout: Option<Duration>,
) -> Option<hyper::Error> {
    tokio::pin!(conn);
    let mut draining = *drain.borrow();
    if draining && C::DRAIN_ITSELF {
        conn.as_mut().start_drain();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "client connection ended with an error");
                }
                return result.err();
            }
            changed = drain.changed(), if !draining => {
                // A dropped sender means the listener is gone: drain as well.
                let _ = changed;
                draining = true;
                if C::DRAIN_ITSELF {
                    conn.as_mut().start_drain();
                }
            }
            why = expired(state, idle_timeout, header_read_timeout) => {
                tracing::debug!(?why, "client connection closed");
                return None;
            }
            // While draining, a connection with no request in flight (say, one that sent half a
            // request head) is closed after a short grace instead of holding the drain.
            _ = expired(state, DRAIN_GRACE, None), if draining => return None,
        }
    }
}

/// Waits for a connection's first request bytes before any HTTP state (and its buffers) exists
/// for it, so that an idle connection costs little memory. Returns false when the connection
/// should be closed instead: nothing came within the listener's idle timeout, or the listener
/// is draining. `buffered` is what the TLS layer already holds.
async fn first_bytes(
    shared: &Shared,
    tcp: &TcpStream,
    port: u16,
    buffered: usize,
    drain: &watch::Receiver<bool>,
) -> bool {
    if buffered > 0 {
        return true;
    }
    tokio::select! {
        readable = tcp.readable() => readable.is_ok(),
        () = tokio::time::sleep(idle_timeout(shared, port)) => false,
        () = drained_for(drain.clone(), DRAIN_GRACE) => false,
    }
}

/// Resolves `grace` after the listener asks its connections to drain.
async fn drained_for(drain: watch::Receiver<bool>, grace: Duration) {
    draining(drain).await;
    tokio::time::sleep(grace).await;
}

/// Resolves once the listener asks its connections to drain (or is gone).
async fn draining(mut drain: watch::Receiver<bool>) {
    while !*drain.borrow_and_update() {
        if drain.changed().await.is_err() {
            return;
        }
    }
}
