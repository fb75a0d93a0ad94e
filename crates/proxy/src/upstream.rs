//! Connections to one instance: a pool of idle HTTP/1.1 keep-alive connections, and the connect
//! step kept apart from the send step so that a failed connect can be retried on another instance
//! with the request still in hand.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use crate::backend_tls::BackendTls;

/// Idle connections older than this are not reused: backends commonly close idle keep-alive
/// connections after a few seconds, and reusing one the backend is closing loses the request.
const IDLE_REUSE_LIMIT: Duration = Duration::from_secs(4);
/// Idle connections kept per instance; more are closed when returned.
const MAX_IDLE_PER_INSTANCE: usize = 512;

/// The request body type sent to instances: the client's body, streamed.
pub(crate) type UpstreamBody = Incoming;
pub(crate) type Sender = SendRequest<UpstreamBody>;

/// Why no connection to an instance could be had. Nothing was sent, so a retry elsewhere is safe.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connect to {0} timed out")]
    Timeout(SocketAddr),
    #[error("connect to {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS with {addr}: {source}")]
    Tls {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: hyper::Error,
    },
}

struct IdleConn {
    sender: Sender,
    since: Instant,
}

/// The connections of one load balancer to one instance address: its pool of idle ones, and a
/// handle on every task that carries an exchange with it, so that draining can end them.
pub(crate) struct Upstream {
    addr: SocketAddr,
    connect_timeout: Duration,
    /// TLS to the instance (instance protocol HTTPS or SSL).
    tls: Option<BackendTls>,
    idle: Mutex<Vec<IdleConn>>,
    /// Whether a task is closing idle connections that are too old to reuse.
    reaping: AtomicBool,
    /// Connection and upgraded-stream tasks; finished ones are pruned as new ones start.
    tasks: Mutex<Vec<AbortHandle>>,
    /// Requests sent and not yet answered in full, for least-outstanding-requests balancing.
    outstanding: AtomicUsize,
}

/// Counts one outstanding request on an instance until dropped.
pub(crate) struct Outstanding(Arc<Upstream>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Upstream {
    pub(crate) fn new(
        addr: SocketAddr,
        connect_timeout: Duration,
        tls: Option<BackendTls>,
    ) -> Self {
        Upstream {
            addr,
            connect_timeout,
            tls,
            idle: Mutex::new(Vec::new()),
            reaping: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            outstanding: AtomicUsize::new(0),
        }
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub(crate) fn begin_request(self: &Arc<Self>) -> Outstanding {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Outstanding(Arc::clone(self))
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A ready connection: the most recently used idle one, or a new one.
    pub(crate) async fn checkout(&self) -> Result<Sender, ConnectError> {
        match self.take_idle() {
            Some(sender) => Ok(sender),
            // Boxed: the connect path (TCP, TLS, HTTP handshake) is several kilobytes of future
            // state that every request's future would otherwise carry and copy.
            None => Box::pin(self.connect()).await,
        }
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(conn) = idle.pop() {
            if conn.since.elapsed() < IDLE_REUSE_LIMIT && conn.sender.is_ready() {
                return Some(conn.sender);
            }
        }
        None
    }

    /// Returns a connection whose exchange is complete.
    pub(crate) fn checkin(self: &Arc<Self>, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= MAX_IDLE_PER_INSTANCE {
            return;
        }
        idle.push(IdleConn {
            sender,
            since: Instant::now(),
        });
        // The flag is read and cleared under the pool's lock, so no connection is left idle
        // without a reaper to close it.
        if !self.reaping.swap(true, Ordering::Relaxed) {
            tokio::spawn(reap(Arc::downgrade(self)));
        }
    }

    /// A new TCP connection to the instance.
    pub(crate) async fn connect_tcp(&self) -> Result<TcpStream, ConnectError> {
        let addr = self.addr;
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout(addr))?
            .map_err(|source| ConnectError::Io { addr, source })?;
        // Requests and responses are small writes that must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// TLS over a connection to the instance; the instance is named by its address (no SNI).
    pub(crate) async fn tls_connect(
        &self,
        tls: &BackendTls,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
        let addr = self.addr;
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.config));
        tokio::time::timeout(self.connect_timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| ConnectError::Timeout(addr))?
            .map_err(|source| ConnectError::Tls { addr, source })
    }

    pub(crate) fn tls(&self) -> Option<&BackendTls> {
        self.tls.as_ref()
    }

    /// Returns a connection whose exchange is complete, once it is ready for another request:
    /// at once when it already is, otherwise from a small task that waits for it.
    pub(crate) fn checkin_when_ready(self: &Arc<Self>, mut sender: Sender) {
        if sender.is_ready() {
            return self.checkin(sender);
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                this.checkin(sender);
            }
        });
    }

    async fn connect(&self) -> Result<Sender, ConnectError> {
        let tcp = self.connect_tcp().await?;
        match &self.tls {
            None => self.handshake(tcp).await,
            Some(tls) => self.handshake(self.tls_connect(tls, tcp).await?).await,
        }
    }

    async fn handshake<IO>(&self, io: IO) -> Result<Sender, ConnectError>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let addr = self.addr;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|source| ConnectError::Handshake { addr, source })?;
        let task = tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(%addr, error = %e, "instance connection ended");
            }
        });
        self.track(task.abort_handle());
        Ok(sender)
    }

    /// Keeps a handle on a task that carries traffic to this instance.
    pub(crate) fn track(&self, task: AbortHandle) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// The instance left the load balancer: after `grace` (connection draining), every exchange
    /// still under way with it is cut and its connections closed. Requests that finish within
    /// the grace are untouched.
    pub(crate) fn retire(self: Arc<Self>, grace: Duration) {
        tokio::spawn(async move {
            if self.outstanding() > 0 {
                let deadline = tokio::time::Instant::now() + grace;
                while self.outstanding() > 0 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50).min(grace)).await;
                }
            }
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
            let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
            let cut = tasks.iter().filter(|t| !t.is_finished()).count();
            for t in tasks {
                t.abort();
            }
            if cut > 0 {
                tracing::info!(instance = %self.addr, connections = cut, "drain over: connections to a deregistered instance closed");
            }
        });
    }
}

/// Closes idle connections once they are too old to reuse, so that a burst does not leave its
/// connections open on the instance until the next burst; ends when the pool is empty.
async fn reap(upstream: Weak<Upstream>) {
    loop {
        tokio::time::sleep(IDLE_REUSE_LIMIT / 4).await;
        let Some(upstream) = upstream.upgrade() else {
            return;
        };
        let mut idle = upstream.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|c| c.since.elapsed() < IDLE_REUSE_LIMIT && !c.sender.is_closed());
        if idle.is_empty() {
            upstream.reaping.store(false, Ordering::Relaxed);
            return;
        }
    }
}
