//! Secrets of the node (or fleet) itself rather than of the configuration: the key that
//! authenticates stickiness cookies, the key of the API's self-signed CA. Each is drawn once,
//! sealed under the master key like every other secret, and kept in the store, so that every
//! process sharing the store (a restart, an upgrade, a fleet later) has the same one.

use rusqlite::{params, OptionalExtension};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::seal::Purpose;
use crate::Store;

/// The stickiness cookies' MAC key.
pub const STICKINESS_KEY: &str = "stickiness_key";
pub const STICKINESS_KEY_LEN: usize = 32;
/// The private key (PEM) of the CA that signs the API's self-signed certificate.
pub const API_CA_KEY: &str = "api_ca_key";

impl Store {
    /// The node secret `name`, made with `create` the first time it is asked for. Two processes
    /// asking at once both get the first one stored.
    pub fn node_secret(
        &self,
        name: &str,
        create: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, StoreError>,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if let Some(secret) = self.read_node_secret(name)? {
            return Ok(secret);
        }
        let fresh = create()?;
        let sealed = self.sealer.seal(Purpose::NodeSecret, name, &fresh)?;
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
                params![meta_name(name), sealed],
            )
            .map_err(StoreError::sqlite(self.context(&format!("storing {name}"))))?;
        self.read_node_secret(name)?.ok_or_else(|| {
            StoreError::Corrupt(format!("{name} vanished from {}", self.db_path.display()))
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

    fn read_node_secret(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .lock()
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![meta_name(name)],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sqlite(self.context(&format!("reading {name}"))))?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let opened = self
            .sealer
            .open(Purpose::NodeSecret, name, &sealed)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{name} in {} cannot be decrypted",
                    self.db_path.display()
                ))
            })?;
        Ok(Some(opened))
    }
}

/// Node secrets share the `meta` table with the master key check, under their own prefix.
fn meta_name(name: &str) -> String {
    format!("secret:{name}")
}
