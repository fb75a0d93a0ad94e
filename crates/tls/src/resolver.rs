//! The rustls certificate resolver whose table is replaced while connections run, so that
//! certificate rotation needs no new listener and drops no connection.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::SniTable;

/// Resolves by SNI through an [`SniTable`] that [`swap`](Self::swap) replaces atomically:
/// handshakes in progress keep the table they started with, new ones see the new table.
#[derive(Debug)]
pub struct SwappableResolver {
    table: ArcSwap<SniTable>,
}

impl SwappableResolver {
    pub fn new(table: SniTable) -> Self {
        SwappableResolver {
            table: ArcSwap::from_pointee(table),
        }
    }

    /// Installs `table` for every handshake that starts from now on.
    pub fn swap(&self, table: SniTable) {
        self.table.store(Arc::new(table));
    }

    /// The table in use now.
    pub fn table(&self) -> Arc<SniTable> {
        self.table.load_full()
    }
}

impl ResolvesServerCert for SwappableResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self
            .table
            .load()
            .resolve_for(client_hello.server_name(), client_hello.signature_schemes());
        Some(key)
    }
}
