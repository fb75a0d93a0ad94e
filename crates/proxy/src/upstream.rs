//! Connections to one instance: a pool of idle HTTP/1.1 keep-alive connections, the connect
//! step kept apart from the send step so that a failed connect can be retried on another instance
//! with the request still in hand, and the bound on exchanges under way with the instance (with
//! its queue of requests waiting for one: ELB's surge queue).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use crate::backend_tls::BackendTls;
use crate::conn::{ConnState, Tracked};
use crate::Limits;

/// Idle connections older than this are not reused: backends commonly close idle keep-alive
/// connections after a few seconds, and reusing one the backend is closing loses the request.
const IDLE_REUSE_LIMIT: Duration = Duration::from_secs(4);
/// Idle connections kept per instance; more are closed when returned.
const MAX_IDLE_PER_INSTANCE: usize = 512;

/// The request body type sent to instances: the client's body, streamed.
pub(crate) type UpstreamBody = crate::body::RequestBody;

/// One HTTP/1.1 connection to an instance, with what its bytes moving tell: the balancer's
/// wait for a response is cut after the idle timeout without a byte either way, not after a
/// fixed time, so that a long upload is never cut while it moves.
pub(crate) struct Sender {
    send: SendRequest<UpstreamBody>,
    activity: Arc<ConnState>,
}

impl Sender {
    pub(crate) fn is_ready(&self) -> bool {
        self.send.is_ready()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.send.is_closed()
    }

    pub(crate) async fn ready(&mut self) -> hyper::Result<()> {
        self.send.ready().await
    }

    pub(crate) fn activity(&self) -> Arc<ConnState> {
        Arc::clone(&self.activity)
    }

    pub(crate) fn try_send_request(
        &mut self,
        req: http::Request<UpstreamBody>,
    ) -> impl std::future::Future<
        Output = Result<
            http::Response<Incoming>,
            hyper::client::conn::TrySendError<http::Request<UpstreamBody>>,
        >,
    > {
        self.send.try_send_request(req)
    }
}

/// Why a request could not have its turn with an instance. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Overloaded {
    #[error("{0} has its maximum of exchanges under way and its queue is full")]
    QueueFull(SocketAddr),
    #[error("{addr} had no free connection within {waited:?}")]
    QueueTimeout { addr: SocketAddr, waited: Duration },
}

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
    /// One permit per exchange under way, when exchanges with an instance are bounded.
    permits: Option<Arc<Semaphore>>,
    queue_len: usize,
    queue_timeout: Duration,
    /// Requests waiting for a permit now (ELB's `SurgeQueueLength`).
    queued: AtomicUsize,
    /// Requests refused because the queue was full or their wait ran out (`SpilloverCount`).
    spillover: AtomicU64,
}

/// Counts one outstanding request (or stream) on an instance until dropped, holding its place
/// among the instance's bounded exchanges.
pub(crate) struct Outstanding {
    upstream: Arc<Upstream>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.upstream.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Upstream {
    pub(crate) fn new(
        addr: SocketAddr,
        connect_timeout: Duration,
        tls: Option<BackendTls>,
        limits: &Limits,
    ) -> Self {
        Upstream {
            addr,
            connect_timeout,
            tls,
            idle: Mutex::new(Vec::new()),
            reaping: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            outstanding: AtomicUsize::new(0),
            permits: (limits.max_instance_connections > 0)
                .then(|| Arc::new(Semaphore::new(limits.max_instance_connections))),
            queue_len: limits.instance_queue,
            queue_timeout: limits.instance_queue_timeout,
            queued: AtomicUsize::new(0),
            spillover: AtomicU64::new(0),
        }
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Requests waiting for a turn now, and requests refused for want of one so far.
    pub(crate) fn surge(&self) -> (usize, u64) {
        (
            self.queued.load(Ordering::Relaxed),
            self.spillover.load(Ordering::Relaxed),
        )
    }

    /// Takes a turn among the exchanges under way with this instance: at once while fewer than
    /// the maximum are, otherwise after a wait in the queue; refused when the queue is full or
    /// the wait runs out.
    pub(crate) async fn begin_request(self: &Arc<Self>) -> Result<Outstanding, Overloaded> {
        let permit = match &self.permits {
            None => None,
            Some(permits) => match Arc::clone(permits).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => Some(Box::pin(self.wait_for_turn(permits)).await?),
            },
        };
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Ok(Outstanding {
            upstream: Arc::clone(self),
            _permit: permit,
        })
    }

    async fn wait_for_turn(
        &self,
        permits: &Arc<Semaphore>,
    ) -> Result<OwnedSemaphorePermit, Overloaded> {
        let queued = self.queued.fetch_add(1, Ordering::Relaxed);
        let waited = if queued >= self.queue_len {
            Err(Overloaded::QueueFull(self.addr))
        } else {
            match tokio::time::timeout(self.queue_timeout, Arc::clone(permits).acquire_owned())
                .await
            {
                Ok(Ok(permit)) => Ok(permit),
                // The semaphore is never closed; a timeout is the only way out.
                _ => Err(Overloaded::QueueTimeout {
                    addr: self.addr,
                    waited: self.queue_timeout,
                }),
            }
        };
        self.queued.fetch_sub(1, Ordering::Relaxed);
        if waited.is_err() {
            self.spillover.fetch_add(1, Ordering::Relaxed);
        }
        waited
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
        let (io, activity) = Tracked::new(io);
        let (send, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|source| ConnectError::Handshake { addr, source })?;
        let task = tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(%addr, error = %e, "instance connection ended");
            }
        });
        self.track(task.abort_handle());
        Ok(Sender { send, activity })
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
