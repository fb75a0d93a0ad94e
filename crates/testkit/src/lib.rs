//! Test support for fulcrum: a throwaway CA, named backends on loopback, black holes and closed ports,
//! HTTP/HTTPS clients that go through the real network, and a headless Chromium for the console
//! (`Browser`). Everything binds 127.0.0.1 with port 0 and every client operation is bounded in time,
//! so a broken balancer fails a test instead of hanging it.

mod backend;
mod body;
mod browser;
mod ca;
mod client;
mod etcd;
mod net;
mod reply;
mod tls;
mod wait;

use std::time::Duration;

pub use backend::Backend;
pub use body::{RepeatBody, CHUNK};
pub use browser::{Browser, BrowserCookie, FetchReply, BROWSER_WAIT};
pub use ca::{self_signed, TestCa};
pub use client::{build_request, http_get, http_upgrade, https_get, raw_exchange, Conn};
pub use etcd::{Etcd, EtcdCluster};
/// fantoccini, for the element handles [`Browser`] gives and what its helpers do not cover.
pub use fantoccini;
pub use net::{bind_listener, closed_port, loopback_any, BlackHole};
pub use reply::Reply;
pub use tls::{
    certs_from_pem, client_tls_config, client_tls_config_versions, client_tls_config_with_cert,
    key_from_pem, provider, root_store, server_tls_config, server_tls_config_mtls,
};
pub use wait::{eventually, POLL_INTERVAL};

/// The error type of the test clients.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Upper bound of every client operation (connect, handshake, one request and its whole body).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
