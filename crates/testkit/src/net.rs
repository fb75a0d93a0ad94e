//! Loopback listeners: binding helpers, a black hole that never answers, and a closed port.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// 127.0.0.1 with port 0 (an ephemeral port).
pub fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Binds a listener (SO_REUSEADDR) on `addr`; if the port is still held (e.g. by a backend being stopped),
/// retries for up to 2 s before giving up.
pub async fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match bind_once(addr) {
            Ok(listener) => return Ok(listener),
            Err(e)
                if e.kind() == io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn bind_once(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A port on 127.0.0.1 with nothing listening (bind port 0, note the port, drop the listener).
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind(loopback_any()).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr")
}

/// A listener that accepts connections and never writes (reads and discards), for 504 / timeout tests.
/// Stops (closing every connection) when dropped.
pub struct BlackHole {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl BlackHole {
    /// Starts a black hole on 127.0.0.1:0.
    pub async fn start() -> BlackHole {
        let listener = bind_listener(loopback_any())
            .await
            .expect("bind black hole");
        let addr = listener.local_addr().expect("local_addr");
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in the set: aborting this task drops the set, which aborts them all.
            let mut conns = JoinSet::new();
            loop {
                while conns.try_join_next().is_some() {}
                let Ok((mut stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                conns.spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
            }
        });
        BlackHole {
            addr,
            connections,
            task,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accepted TCP connections so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}
