//! Secrets of the node (or fleet) itself rather than of the configuration: the key that
//! authenticates stickiness cookies, the key of the API's self-signed CA. Each is drawn once,
//! sealed under the master key like every other secret, and kept in the store, so that every
//! process sharing the store (a restart, an upgrade, a fleet later) has the same one.

use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::seal::Purpose;
use crate::{Backend, Store};

/// The stickiness cookies' MAC key.
pub const STICKINESS_KEY: &str = "stickiness_key";
pub const STICKINESS_KEY_LEN: usize = 32;
/// The private key (PEM) of the CA that signs the API's self-signed certificate.
pub const API_CA_KEY: &str = "api_ca_key";

impl Store {
    /// The node secret `name`, made with `create` the first time it is asked for. Two processes
    /// (or two nodes of a fleet) asking at once both get the first one stored.
    pub fn node_secret(
        &self,
        name: &str,
        create: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, StoreError>,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let stored = match &self.backend {
            Backend::Sqlite(db) => db.node_secret(name)?,
            Backend::Etcd(etcd) => etcd.node_secret(name),
        };
        let sealed = match stored {
            Some(sealed) => sealed,
            None => {
                let fresh = create()?;
                let sealed = self.shared.sealer.seal(Purpose::NodeSecret, name, &fresh)?;
                match &self.backend {
                    Backend::Sqlite(db) => db.insert_node_secret(name, &sealed)?,
                    Backend::Etcd(etcd) => etcd.insert_node_secret(name, &sealed)?,
                }
            }
        };
        self.shared
            .sealer
            .open(Purpose::NodeSecret, name, &sealed)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("{name} in {} cannot be decrypted", self.describe()))
            })
    }

    /// The stickiness cookies' key, drawn on first use.
    pub fn stickiness_key(&self) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.node_secret(STICKINESS_KEY, || {
            let mut key = Zeroizing::new(vec![0u8; STICKINESS_KEY_LEN]);
            aws_lc_rs::rand::fill(&mut key[..])
                .map_err(|_| StoreError::Crypto("drawing the stickiness key".into()))?;
            Ok(key)
        })
    }
}
