//! The key that authenticates `AWSELB` stickiness cookies. It is drawn once, sealed under the
//! master key like every other secret, and kept in the store, so that every node sharing the
//! store (and the same node after a restart) honours the cookies of every other.

use rusqlite::{params, OptionalExtension};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::seal::Purpose;
use crate::Store;

/// The row of the `meta` table that holds the sealed key.
const NAME: &str = "stickiness_key";
pub const STICKINESS_KEY_LEN: usize = 32;

impl Store {
    /// The stickiness cookie key, created on first use.
    pub fn stickiness_key(&self) -> Result<Zeroizing<[u8; STICKINESS_KEY_LEN]>, StoreError> {
        if let Some(key) = self.read_stickiness_key()? {
            return Ok(key);
        }
        let mut fresh = Zeroizing::new([0u8; STICKINESS_KEY_LEN]);
        aws_lc_rs::rand::fill(&mut fresh[..])
            .map_err(|_| StoreError::Crypto("drawing the stickiness key".into()))?;
        let sealed = self.sealer.seal(Purpose::StickinessKey, NAME, &fresh[..])?;
        // Two processes starting together: the first insert wins, and both read it back.
        self.lock()
            .execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
                params![NAME, sealed],
            )
            .map_err(StoreError::sqlite(
                self.context("storing the stickiness key"),
            ))?;
        self.read_stickiness_key()?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "the stickiness key vanished from {}",
                self.db_path.display()
            ))
        })
    }

    fn read_stickiness_key(
        &self,
    ) -> Result<Option<Zeroizing<[u8; STICKINESS_KEY_LEN]>>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .lock()
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                params![NAME],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sqlite(
                self.context("reading the stickiness key"),
            ))?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let corrupt = || {
            StoreError::Corrupt(format!(
                "the stickiness key in {} cannot be decrypted",
                self.db_path.display()
            ))
        };
        let opened = self
            .sealer
            .open(Purpose::StickinessKey, NAME, &sealed)
            .ok_or_else(corrupt)?;
        let mut key = Zeroizing::new([0u8; STICKINESS_KEY_LEN]);
        if opened.len() != STICKINESS_KEY_LEN {
            return Err(corrupt());
        }
        key.copy_from_slice(&opened);
        Ok(Some(key))
    }
}
