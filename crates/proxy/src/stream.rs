//! TCP and SSL listeners: after the optional TLS handshake, a byte stream to an instance, with
//! the PROXY protocol header when the instance port asks for it, half-close carried both ways,
//! and the idle timeout.

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use fulcrum_model::Balancing;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::conn::{idle_expired, Tracked};
use crate::proxy_protocol;
use crate::upstream::Outstanding;
use crate::Shared;

/// Proxies one accepted (and, for SSL, decrypted) client connection of listener `port`.
pub(crate) async fn serve<IO>(
    shared: Arc<Shared>,
    client_io: IO,
    client: SocketAddr,
    local: SocketAddr,
    port: u16,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(route) = shared.runtime.load().routes.get(&port).cloned() else {
        return;
    };
    // Least connections: for a byte stream, outstanding requests are open connections.
    let Some(mut target) = route
        .targets
        .pick(Balancing::LeastOutstandingRequests, None)
    else {
        tracing::debug!(port, %client, "no instance in service: connection closed");
        return;
    };
    let mut retried = false;
    let (upstream, mut instance) = loop {
        let upstream = Arc::clone(&route.targets.all[target].upstream);
        match upstream.connect_tcp().await {
            Ok(stream) => break (upstream, stream),
            Err(e) if !retried => {
                tracing::debug!(error = %e, "retrying on another instance");
                retried = true;
                target = route
                    .targets
                    .pick(Balancing::LeastOutstandingRequests, Some(target))
                    .unwrap_or(target);
            }
            Err(e) => {
                tracing::info!(port, error = %e, "no instance could be reached: connection closed");
                return;
            }
        }
    };
    let outstanding = upstream.begin_request();
    if let Some(version) = route.proxy_protocol {
        let header = proxy_protocol::header(version, client, local);
        if let Err(e) = instance.write_all(&header).await {
            tracing::info!(instance = %upstream.addr(), error = %e, "PROXY header not sent");
            return;
        }
    }
    let idle_timeout = route.idle_timeout;
    let task = match upstream.tls() {
        None => tokio::spawn(pipe(client_io, instance, idle_timeout, outstanding)),
        Some(tls) => match upstream.tls_connect(tls, instance).await {
            Ok(instance) => tokio::spawn(pipe(client_io, instance, idle_timeout, outstanding)),
            Err(e) => {
                tracing::info!(error = %e, "connection closed");
                return;
            }
        },
    };
    upstream.track(task.abort_handle());
    let _ = task.await;
}

/// Copies bytes both ways until both sides are done or the connection idles out.
async fn pipe<C, I>(
    client_io: C,
    mut instance: I,
    idle_timeout: std::time::Duration,
    outstanding: Outstanding,
) where
    C: AsyncRead + AsyncWrite + Unpin,
    I: AsyncRead + AsyncWrite + Unpin,
{
    let _outstanding = outstanding;
    let (mut client_io, activity) = Tracked::new(client_io);
    let no_requests = AtomicUsize::new(0);
    // copy_bidirectional carries a half-close across: when one side finishes sending, the other
    // side's write half is shut down and the rest still flows the other way.
    tokio::select! {
        done = tokio::io::copy_bidirectional(&mut client_io, &mut instance) => {
            if let Err(e) = done {
                tracing::debug!(error = %e, "stream ended with an error");
            }
        }
        () = idle_expired(&activity, &no_requests, idle_timeout) => {
            tracing::debug!("stream idle: closed");
        }
    }
}
