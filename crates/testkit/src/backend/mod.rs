//! An instance behind the balancer: a small HTTP server on loopback that reports what it saw.

mod routes;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::net::{bind_listener, loopback_any};

/// Counters and switches shared by a backend's tasks.
struct Stats {
    name: String,
    requests: AtomicU64,
    in_flight: AtomicU64,
    connections: AtomicU64,
    healthy: AtomicBool,
}

/// What the backend knows about one accepted connection.
struct ConnInfo {
    peer: SocketAddr,
    tls: bool,
    sni: Option<String>,
    alpn: Option<String>,
    client_cert: bool,
}

/// An instance behind the balancer: an HTTP/1.1 server (hyper, keep-alive; h2 also accepted) on 127.0.0.1:0, named.
///
/// Cloning gives another handle to the same server; it stops (listener and every connection closed)
/// when the last handle is dropped, or at once with [`Backend::stop`].
#[derive(Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    stats: Arc<Stats>,
    /// Dropping the sender tells every connection and upgraded-stream task to end.
    shutdown: Mutex<Option<watch::Sender<()>>>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
    }
}

impl Backend {
    /// Starts a plain-HTTP backend named `name` on 127.0.0.1:0.
    pub async fn start(name: &str) -> Backend {
        Backend::start_on(name, loopback_any())
            .await
            .expect("start backend on 127.0.0.1:0")
    }

    /// Starts a plain-HTTP backend on `addr` (e.g. to restart on the same port; retries up to 2 s while it is held).
    pub async fn start_on(name: &str, addr: SocketAddr) -> io::Result<Backend> {
        Backend::launch(name, addr, None).await
    }

    /// Starts an HTTPS backend (TLS with `tls`, e.g. from [`crate::server_tls_config`]) on 127.0.0.1:0.
    pub async fn start_tls(name: &str, tls: Arc<rustls::ServerConfig>) -> Backend {
        Backend::start_tls_on(name, loopback_any(), tls)
            .await
            .expect("start TLS backend on 127.0.0.1:0")
    }

    /// Starts an HTTPS backend on `addr`.
    pub async fn start_tls_on(
        name: &str,
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
    ) -> io::Result<Backend> {
        Backend::launch(name, addr, Some(TlsAcceptor::from(tls))).await
    }

    async fn launch(name: &str, addr: SocketAddr, tls: Option<TlsAcceptor>) -> io::Result<Backend> {
        let listener = bind_listener(addr).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats {
            name: name.to_string(),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(());
        let accept = tokio::spawn(accept_loop(listener, tls, stats.clone(), shutdown_rx));
        Ok(Backend {
            inner: Arc::new(Inner {
                addr,
                stats,
                shutdown: Mutex::new(Some(shutdown_tx)),
                accept: Mutex::new(Some(accept)),
            }),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Its name (the `instance` field of every answer and the `x-instance` response header).
    pub fn name(&self) -> &str {
        &self.inner.stats.name
    }

    /// Requests received so far (all paths except /health).
    pub fn requests(&self) -> u64 {
        self.inner.stats.requests.load(Ordering::SeqCst)
    }

    /// Requests currently in flight (handler running, or streamed response body not yet finished).
    pub fn in_flight(&self) -> u64 {
        self.inner.stats.in_flight.load(Ordering::SeqCst)
    }

    /// Health endpoint: GET /health answers 200 "ok" when healthy (default), 503 otherwise.
    pub fn set_healthy(&self, healthy: bool) {
        self.inner.stats.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Whether /health currently answers 200.
    pub fn is_healthy(&self) -> bool {
        self.inner.stats.healthy.load(Ordering::SeqCst)
    }

    /// Accepted TCP connections so far (to check keep-alive pooling).
    pub fn connections(&self) -> u64 {
        self.inner.stats.connections.load(Ordering::SeqCst)
    }

    /// Stops the server now, for every handle: closes the listener (the port is free when this returns)
    /// and every open connection.
    pub async fn stop(&self) {
        self.inner.shutdown.lock().unwrap().take();
        let task = self.inner.accept.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name())
            .field("addr", &self.addr())
            .finish()
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<()>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        stats.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let stats = stats.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = serve_stream(stream, peer, tls, stats, conn_shutdown.clone()) => {}
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

async fn serve_stream(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    stats: Arc<Stats>,
    shutdown: watch::Receiver<()>,
) {
    let Some(acceptor) = tls else {
        let info = ConnInfo {
            peer,
            tls: false,
            sni: None,
            alpn: None,
            client_cert: false,
        };
        return serve_http(stream, info, stats, shutdown).await;
    };
    let handshake = tokio::time::timeout(crate::CLIENT_TIMEOUT, acceptor.accept(stream)).await;
    let Ok(Ok(stream)) = handshake else { return };
    let session = stream.get_ref().1;
    let info = ConnInfo {
        peer,
        tls: true,
        sni: session.server_name().map(str::to_string),
        alpn: session
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        client_cert: session.peer_certificates().is_some_and(|c| !c.is_empty()),
    };
    serve_http(stream, info, stats, shutdown).await;
}

async fn serve_http<I>(io: I, info: ConnInfo, stats: Arc<Stats>, shutdown: watch::Receiver<()>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let info = Arc::new(info);
    let service = hyper::service::service_fn(move |req| {
        routes::handle(req, info.clone(), stats.clone(), shutdown.clone())
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let _ = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await;
}
