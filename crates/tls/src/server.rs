//! The server side of a TLS listener: its protocol settings, its session resumption state and the
//! rustls configuration built from them.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache};
use rustls::{CipherSuite, ProtocolVersion, ServerConfig, SupportedProtocolVersion};

use crate::{crypto_provider, SwappableResolver, TlsError};

/// The TLS settings of one listener's server side. The default is TLS 1.2 and 1.3 with rustls's
/// suites, which are all AEAD with ECDHE key exchange; ELB negotiation policies map onto this.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ServerTlsSettings {
    /// Refuse TLS 1.2.
    pub tls13_only: bool,
    /// The suites to offer, most preferred first; empty means all of rustls's. A protocol version
    /// left without any suite is not offered (an ELB policy listing no TLS 1.3 suite is TLS 1.2
    /// only). Suites rustls does not implement are ignored.
    pub cipher_suites: Vec<CipherSuite>,
    /// Choose the suite by the server's order rather than the client's (ELB's "Server Order
    /// Preference").
    pub server_cipher_order: bool,
}

/// Session resumption state shared by all of a listener's configurations, ideally by the whole
/// node, so that a certificate rotation or a settings change keeps clients resuming: a ticketer
/// whose keys rotate, and a server-side session cache for clients that do not take tickets.
#[derive(Clone)]
pub struct SessionResumption {
    ticketer: Arc<dyn ProducesTickets>,
    cache: Arc<ServerSessionMemoryCache>,
}

impl SessionResumption {
    /// Enough sessions for a busy node while bounded in memory (a few hundred bytes each).
    pub const DEFAULT_CACHE_SIZE: usize = 65_536;

    pub fn new() -> Result<Self, TlsError> {
        Self::with_cache_size(Self::DEFAULT_CACHE_SIZE)
    }

    pub fn with_cache_size(sessions: usize) -> Result<Self, TlsError> {
        let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| {
            TlsError::Internal(format!("cannot create the session ticket keys: {e}"))
        })?;
        Ok(SessionResumption {
            ticketer,
            cache: ServerSessionMemoryCache::new(sessions),
        })
    }
}

impl fmt::Debug for SessionResumption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The ticketer holds the ticket keys: only say whether it is on.
        f.debug_struct("SessionResumption")
            .field("tickets", &self.ticketer.enabled())
            .finish_non_exhaustive()
    }
}

/// Builds a listener's server configuration: certificates from `resolver`, versions and suites
/// from `settings`, shared resumption state, and ALPN `h2` then `http/1.1` (only `http/1.1` when
/// `alpn_h2` is false).
pub fn server_config(
    resolver: Arc<SwappableResolver>,
    settings: &ServerTlsSettings,
    resumption: &SessionResumption,
    alpn_h2: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider_for(settings)?;
    let versions = versions_for(settings, &provider)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Config(format!("rustls refused the TLS settings: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.ignore_client_order = settings.server_cipher_order;
    config.ticketer = resumption.ticketer.clone();
    config.session_storage = resumption.cache.clone();
    config.send_tls13_tickets = 2;
    config.alpn_protocols = if alpn_h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

fn provider_for(settings: &ServerTlsSettings) -> Result<CryptoProvider, TlsError> {
    let mut provider = CryptoProvider::clone(&crypto_provider());
    if !settings.cipher_suites.is_empty() {
        provider.cipher_suites = settings
            .cipher_suites
            .iter()
            .filter_map(|wanted| {
                provider
                    .cipher_suites
                    .iter()
                    .find(|s| s.suite() == *wanted)
                    .copied()
            })
            .collect();
        if provider.cipher_suites.is_empty() {
            return Err(TlsError::Config(format!(
                "none of the cipher suites {:?} is supported",
                settings.cipher_suites
            )));
        }
    }
    Ok(provider)
}

fn versions_for(
    settings: &ServerTlsSettings,
    provider: &CryptoProvider,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let has_suite_for = |version: ProtocolVersion| {
        provider
            .cipher_suites
            .iter()
            .any(|s| s.version().version == version)
    };
    let mut versions = Vec::new();
    if has_suite_for(ProtocolVersion::TLSv1_3) {
        versions.push(&rustls::version::TLS13);
    }
    if !settings.tls13_only && has_suite_for(ProtocolVersion::TLSv1_2) {
        versions.push(&rustls::version::TLS12);
    }
    if versions.is_empty() {
        return Err(TlsError::Config(
            "TLS 1.3 only is asked for but none of the cipher suites is a TLS 1.3 suite"
                .to_string(),
        ));
    }
    Ok(versions)
}
