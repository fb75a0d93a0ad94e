//! Server-side TLS of the listeners: certificates imported once per id, an SNI table per TLS
//! listener, and the node-wide session resumption state that survives certificate rotation.

use std::collections::HashMap;
use std::sync::Arc;

use fulcrum_model::State;
use fulcrum_tls::{
    import_certificate, server_config, ImportedCertificate, ServerTlsSettings, SessionResumption,
    SniTable, SwappableResolver, TlsError,
};
use tokio_rustls::TlsAcceptor;

pub(crate) struct TlsCache {
    /// By certificate id; an id's certificate never changes, so it is parsed once.
    certs: HashMap<String, Arc<ImportedCertificate>>,
    resumption: SessionResumption,
    settings: ServerTlsSettings,
}

impl TlsCache {
    pub(crate) fn new() -> Result<Self, TlsError> {
        Ok(TlsCache {
            certs: HashMap::new(),
            resumption: SessionResumption::new()?,
            settings: ServerTlsSettings::default(),
        })
    }

    /// The SNI table of every TLS listener in `state`, by port. A listener none of whose
    /// certificates can be used is left out (and so not opened).
    pub(crate) fn tables(&mut self, state: &State) -> HashMap<u16, SniTable> {
        self.certs
            .retain(|id, _| state.certificates.contains_key(id));
        let mut tables = HashMap::new();
        for lb in state.load_balancers.values() {
            for listener in lb.listeners.iter().filter(|l| l.protocol.is_tls()) {
                let certs: Vec<Arc<ImportedCertificate>> = listener
                    .certificates
                    .iter()
                    .filter_map(|id| self.imported(state, id))
                    .collect();
                let Some((default, others)) = certs.split_first() else {
                    continue;
                };
                let table = SniTable::new(
                    Arc::clone(&default.certified_key),
                    &default.dns_names,
                    others
                        .iter()
                        .map(|c| (Arc::clone(&c.certified_key), c.dns_names.clone())),
                );
                tables.insert(listener.port, table);
            }
        }
        tables
    }

    fn imported(&mut self, state: &State, id: &str) -> Option<Arc<ImportedCertificate>> {
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

    /// A resolver and acceptor for a new TLS listener.
    pub(crate) fn acceptor(
        &self,
        table: SniTable,
    ) -> Result<(Arc<SwappableResolver>, TlsAcceptor), TlsError> {
        let resolver = Arc::new(SwappableResolver::new(table));
        let config = server_config(
            Arc::clone(&resolver),
            &self.settings,
            &self.resumption,
            true,
        )?;
        Ok((resolver, TlsAcceptor::from(config)))
    }
}
