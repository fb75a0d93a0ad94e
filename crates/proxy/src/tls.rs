//! Server-side TLS of the listeners: certificates imported once per id, an SNI table and a
//! negotiation policy per TLS listener, and the node-wide session resumption state that
//! survives certificate rotation and policy changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use fulcrum_model::{Listener, LoadBalancer, PolicyKind, State};
use fulcrum_tls::{
    import_certificate, server_config, settings_from_policy, ImportedCertificate,
    ServerTlsSettings, SessionResumption, SniTable, SwappableResolver, TlsError,
};
use rustls::ServerConfig;

/// What a TLS listener should serve, computed from the state.
pub(crate) struct WantedTls {
    pub(crate) table: SniTable,
    /// The names of the certificates in the table, default first (for the rotation event).
    pub(crate) certificates: Vec<String>,
    pub(crate) settings: ServerTlsSettings,
    /// HTTPS offers ALPN h2 and http/1.1; SSL carries any protocol and offers none, so that a
    /// client asking for its own protocol by ALPN is not refused.
    pub(crate) http: bool,
}

/// The live TLS of one listener. Handshakes read the current config; a rotation swaps the
/// certificate table, a policy change swaps the config.
pub(crate) struct ListenerTls {
    resolver: Arc<SwappableResolver>,
    config: ArcSwap<ServerConfig>,
    settings: Mutex<ServerTlsSettings>,
    certificates: Mutex<Vec<String>>,
}

impl ListenerTls {
    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }
}

pub(crate) struct TlsCache {
    /// By certificate id; an id's certificate never changes, so it is parsed once.
    certs: HashMap<String, Arc<ImportedCertificate>>,
    resumption: SessionResumption,
}

impl TlsCache {
    pub(crate) fn new() -> Result<Self, TlsError> {
        Ok(TlsCache {
            certs: HashMap::new(),
            resumption: SessionResumption::new()?,
        })
    }

    /// What every TLS listener in `state` should serve, by port; or why it cannot be served
    /// (no usable certificate, a policy rustls cannot honour).
    pub(crate) fn wanted(&mut self, state: &State) -> HashMap<u16, Result<WantedTls, String>> {
        self.certs
            .retain(|id, _| state.certificates.contains_key(id));
        let mut wanted = HashMap::new();
        for lb in state.load_balancers.values() {
            for listener in lb.listeners.iter().filter(|l| l.protocol.is_tls()) {
                let tls = self.table(state, listener).and_then(|table| {
                    Ok(WantedTls {
                        table,
                        certificates: listener
                            .certificates
                            .iter()
                            .filter_map(|id| state.certificates.get(id))
                            .map(|c| c.name.to_string())
                            .collect(),
                        settings: negotiation(lb, listener)?,
                        http: listener.protocol.is_http(),
                    })
                });
                wanted.insert(listener.port, tls);
            }
        }
        wanted
    }

    fn table(&mut self, state: &State, listener: &Listener) -> Result<SniTable, String> {
        let certs: Vec<Arc<ImportedCertificate>> = listener
            .certificates
            .iter()
            .filter_map(|id| self.imported(state, id))
            .collect();
        let (default, others) = certs
            .split_first()
            .ok_or("no usable certificate for this listener")?;
        Ok(SniTable::new(
            Arc::clone(&default.certified_key),
            &default.dns_names,
            others
                .iter()
                .map(|c| (Arc::clone(&c.certified_key), c.dns_names.clone())),
        ))
    }

    pub(crate) fn imported(&mut self, state: &State, id: &str) -> Option<Arc<ImportedCertificate>> {
        if let Some(c) = self.certs.get(id) {
            return Some(Arc::clone(c));
        }
        let cert = state.certificates.get(id)?;
        match import_certificate(
            &cert.body_pem,
            cert.private_key.expose(),
            cert.chain_pem.as_deref(),
        ) {
            Ok(imported) => {
                let imported = Arc::new(imported);
                self.certs.insert(id.to_owned(), Arc::clone(&imported));
                Some(imported)
            }
            Err(e) => {
                tracing::error!(certificate = %cert.name, error = %e, "certificate unusable");
                None
            }
        }
    }

    /// The TLS of a new listener.
    pub(crate) fn start(&self, wanted: WantedTls) -> Result<Arc<ListenerTls>, TlsError> {
        let resolver = Arc::new(SwappableResolver::new(wanted.table));
        let config = self.config(&resolver, &wanted.settings, wanted.http)?;
        Ok(Arc::new(ListenerTls {
            resolver,
            config: ArcSwap::new(config),
            settings: Mutex::new(wanted.settings),
            certificates: Mutex::new(wanted.certificates),
        }))
    }

    /// Brings a running listener's TLS up to date. Open connections keep what they negotiated.
    pub(crate) fn update(
        &self,
        port: u16,
        tls: &ListenerTls,
        wanted: WantedTls,
    ) -> Result<(), TlsError> {
        let mut settings = tls.settings.lock().unwrap_or_else(|e| e.into_inner());
        if *settings != wanted.settings {
            tls.config
                .store(self.config(&tls.resolver, &wanted.settings, wanted.http)?);
            *settings = wanted.settings;
            tracing::info!(
                event = "tls_policy_changed",
                port,
                "listener TLS policy changed"
            );
        }
        tls.resolver.swap(wanted.table);
        let mut certificates = tls.certificates.lock().unwrap_or_else(|e| e.into_inner());
        if *certificates != wanted.certificates {
            tracing::info!(
                event = "certificate_rotated",
                port,
                from = ?*certificates,
                to = ?wanted.certificates,
                "listener certificate rotated"
            );
            *certificates = wanted.certificates;
        }
        Ok(())
    }

    fn config(
        &self,
        resolver: &Arc<SwappableResolver>,
        settings: &ServerTlsSettings,
        http: bool,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let config = server_config(Arc::clone(resolver), settings, &self.resumption, true)?;
        if http {
            return Ok(config);
        }
        let mut config = Arc::unwrap_or_clone(config);
        config.alpn_protocols.clear();
        Ok(Arc::new(config))
    }
}

/// The listener's SSL negotiation policy as rustls settings; rustls's defaults without one.
fn negotiation(lb: &LoadBalancer, listener: &Listener) -> Result<ServerTlsSettings, String> {
    let policy = listener
        .policy_names
        .iter()
        .filter_map(|n| lb.policy(n))
        .find_map(|p| match &p.kind {
            PolicyKind::Other {
                type_name,
                attributes,
            } if type_name == "SSLNegotiationPolicyType" => Some((p.name.as_str(), attributes)),
            _ => None,
        });
    match policy {
        None => Ok(ServerTlsSettings::default()),
        Some((name, attributes)) => {
            settings_from_policy(attributes).map_err(|e| format!("policy {name}: {e}"))
        }
    }
}
