//! Listening sockets and the connections they accept: bind, accept, TLS handshake, then HTTP/1.1
//! or HTTP/2 served by hyper, with the idle timeout and graceful drain.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum_model::Protocol;
use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::conn::{idle_expired, ConnCount, Tracked};
use crate::forward::{self, ConnInfo};
use crate::Shared;

/// How long an idle connection stays open when its listener has gone from the state.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// While draining, how long a connection without a request in flight may stay quiet.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// One bound port and its accept loop.
pub(crate) struct RunningListener {
    pub(crate) protocol: Protocol,
    pub(crate) tls: Option<Arc<fulcrum_tls::SwappableResolver>>,
    accept: JoinHandle<()>,
    /// Set to true to ask this listener's connections to finish their requests and close.
    drain: watch::Sender<bool>,
    pub(crate) conns: Arc<ConnCount>,
}

impl RunningListener {
    /// Binds `addr` and starts accepting. `tls` is the acceptor for HTTPS listeners.
    pub(crate) fn start(
        shared: Arc<Shared>,
        addr: SocketAddr,
        protocol: Protocol,
        tls: Option<(Arc<fulcrum_tls::SwappableResolver>, TlsAcceptor)>,
    ) -> std::io::Result<RunningListener> {
        let listener = bind(addr)?;
        let (drain, drain_rx) = watch::channel(false);
        let conns = Arc::new(ConnCount::default());
        let (resolver, acceptor) = match tls {
            Some((r, a)) => (Some(r), Some(a)),
            None => (None, None),
        };
        let accept = tokio::spawn(accept_loop(
            shared,
            listener,
            addr.port(),
            acceptor,
            drain_rx,
            Arc::clone(&conns),
        ));
        Ok(RunningListener {
            protocol,
            tls: resolver,
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
    tls: Option<TlsAcceptor>,
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
            client,
            port,
            port_header: port_header.clone(),
            proto: if tls.is_some() { "https" } else { "http" },
        };
        let guard = conns.enter();
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        let drain = drain.clone();
        tokio::spawn(async move {
            let _guard = guard;
            match tls {
                None => serve(shared, stream, info, false, drain).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        shared.config.handshake_timeout,
                        acceptor.accept(stream),
                    );
                    tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(tls)) => {
                                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                                serve(shared, tls, info, h2, drain).await
                            }
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
    mut drain: watch::Receiver<bool>,
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
    let builder = if h2 { &shared.h2 } else { &shared.h1 };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut draining = *drain.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
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
                conn.as_mut().graceful_shutdown();
            }
            () = idle_expired(&activity, &in_flight, idle_timeout) => return,
            // While draining, a connection with no request in flight (say, one that sent half a
            // request head) is closed after a short grace instead of holding the drain.
            () = idle_expired(&activity, &in_flight, DRAIN_GRACE), if draining => return,
        }
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
