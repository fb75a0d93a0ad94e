//! Where the fleet's etcd is and how to reach it: endpoints, prefix, TLS, authentication.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use zeroize::Zeroizing;

use super::{DEFAULT_PREFIX, REQUEST_TIMEOUT};
use crate::error::StoreError;

/// Where the fleet's etcd is and how to talk to it.
#[derive(Clone, Default)]
pub struct EtcdConfig {
    /// `host:port` of each member.
    pub endpoints: Vec<String>,
    /// Every key's prefix; two fleets on one etcd use two prefixes.
    pub prefix: String,
    /// The CA that signed etcd's certificates (PEM file): turns TLS on.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM files), for etcd's `--client-cert-auth`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// etcd's own authentication. Tokens are renewed when they expire.
    pub user: Option<String>,
    pub password: Option<Zeroizing<String>>,
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("ca", &self.ca)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl EtcdConfig {
    /// `etcd://HOST:PORT[,HOST:PORT...]`, with the default prefix.
    pub fn from_url(url: &str) -> Result<EtcdConfig, String> {
        let rest = url.strip_prefix("etcd://").ok_or_else(|| {
            format!("'{url}' is not an etcd URL (etcd://HOST:PORT[,HOST:PORT...])")
        })?;
        let rest = rest.trim_end_matches('/');
        let mut endpoints = Vec::new();
        for ep in rest.split(',') {
            let ep = ep.trim();
            let valid = ep
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(format!("'{ep}' in '{url}' is not HOST:PORT"));
            }
            endpoints.push(ep.to_owned());
        }
        Ok(EtcdConfig {
            endpoints,
            prefix: DEFAULT_PREFIX.to_owned(),
            ..EtcdConfig::default()
        })
    }

    fn tls(&self) -> bool {
        self.ca.is_some() || self.cert.is_some()
    }

    pub(crate) fn uris(&self) -> Vec<String> {
        let scheme = if self.tls() { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|ep| format!("{scheme}://{ep}"))
            .collect()
    }

    pub(crate) fn options(&self) -> Result<ConnectOptions, StoreError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            // A partition that drops packets (no reset) is noticed in seconds, not minutes. Not
            // more often: etcd closes connections that ping more often than every 5 s
            // (--grpc-keepalive-min-time).
            .with_keep_alive(Duration::from_secs(6), Duration::from_secs(4))
            .with_keep_alive_while_idle(true)
            // A member cut off from the quorum must not answer watches with stale data.
            .with_require_leader(true)
            // Tokens expire (etcd's --auth-token-ttl); the client logs in again by itself.
            .with_auto_token_refresh(true);
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.with_user(user.clone(), password.as_str());
        }
        if self.tls() {
            let read = |p: &Path| std::fs::read(p).map_err(StoreError::io(p));
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.ca {
                tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
            }
            match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => {
                    let key = Zeroizing::new(read(key)?);
                    tls = tls.identity(Identity::from_pem(read(cert)?, key.as_slice()));
                }
                (None, None) => {}
                _ => {
                    return Err(StoreError::Etcd {
                        context: "configuring TLS".into(),
                        cause: "a client certificate needs its key, and a key its certificate"
                            .into(),
                    })
                }
            }
            options = options.with_tls(tls);
        }
        Ok(options)
    }
}
