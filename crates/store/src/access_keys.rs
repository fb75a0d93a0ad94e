//! Access keys for the SigV4-signed API. They live beside the state, not in it: they are
//! credentials, not load-balancer configuration, and the data plane must never see them.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, OptionalExtension};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::seal::Purpose;
use crate::Store;

const ID_PREFIX: &str = "AKIA";
const ID_LEN: usize = 20;
const SECRET_LEN: usize = 40;
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Alphanumeric only (about 238 bits in 40 characters): survives shells, INI files and URLs
/// without quoting, unlike AWS's `+` and `/`.
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// An access key as listed; never carries the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub id: String,
    pub description: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub active: bool,
    pub scope: KeyScope,
}

/// What an access key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// Everything.
    Admin,
    /// The `Describe*`, `List*` and `Get*` actions (and the console's read views) only.
    ReadOnly,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Admin => "admin",
            KeyScope::ReadOnly => "read-only",
        }
    }

    pub fn parse(s: &str) -> Option<KeyScope> {
        match s {
            "admin" => Some(KeyScope::Admin),
            "read-only" => Some(KeyScope::ReadOnly),
            _ => None,
        }
    }

    /// As the store keeps it: an unknown scope (written by a newer release) grants the least.
    fn from_column(s: &str) -> KeyScope {
        KeyScope::parse(s).unwrap_or(KeyScope::ReadOnly)
    }
}

/// What came of a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// No active key has that id.
    NoSuchKey,
    /// It is the last active admin key: revoking it would lock everyone out.
    LastAdmin,
}

/// `len` characters drawn uniformly from `alphabet` with the system CSPRNG.
fn random_string(alphabet: &[u8], len: usize) -> Result<Zeroizing<String>, StoreError> {
    // Rejection sampling: bytes above the largest multiple of the alphabet size would bias the
    // first characters of the alphabet.
    let limit = 256 - 256 % alphabet.len();
    let mut out = Zeroizing::new(String::with_capacity(len));
    let mut buf = Zeroizing::new([0u8; 64]);
    while out.len() < len {
        aws_lc_rs::rand::fill(&mut buf[..])
            .map_err(|_| StoreError::Crypto("drawing random bytes for an access key".into()))?;
        for &b in buf.iter() {
            if (b as usize) < limit && out.len() < len {
                out.push(char::from(alphabet[b as usize % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Store {
    /// Creates an active access key; returns its id (`AKIA` + 16 uppercase alphanumerics) and its
    /// 40-character secret. The secret is stored sealed and cannot be listed, only looked up by id.
    pub fn create_access_key(
        &self,
        description: &str,
        scope: KeyScope,
    ) -> Result<(String, String), StoreError> {
        let suffix = random_string(UPPER_ALNUM, ID_LEN - ID_PREFIX.len())?;
        let id = format!("{ID_PREFIX}{}", suffix.as_str());
        let mut secret = random_string(ALNUM, SECRET_LEN)?;
        let sealed = self
            .sealer
            .seal(Purpose::AccessKeySecret, &id, secret.as_bytes())?;
        self.lock()
            .execute(
                "INSERT INTO access_keys (id, description, created, active, sealed_secret, scope) \
                 VALUES (?1, ?2, ?3, 1, ?4, ?5)",
                params![
                    id,
                    description,
                    i64::try_from(now()).unwrap_or(i64::MAX),
                    sealed,
                    scope.as_str()
                ],
            )
            .map_err(StoreError::sqlite(
                self.context(&format!("creating access key {id}")),
            ))?;
        tracing::info!(access_key = %id, scope = scope.as_str(), "created an access key");
        Ok((id, std::mem::take(&mut *secret)))
    }

    /// The secret of an active access key, for verifying a signature; `None` if the key does not
    /// exist or was revoked.
    pub fn access_key_secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.access_key(id)?.map(|(secret, _)| secret))
    }

    /// The secret and the scope of an active access key, in one read: what an API call needs to
    /// check its signature and then what it may do.
    pub fn access_key(&self, id: &str) -> Result<Option<(String, KeyScope)>, StoreError> {
        let row: Option<(Option<Vec<u8>>, String)> = self
            .lock()
            .query_row(
                "SELECT sealed_secret, scope FROM access_keys WHERE id = ?1 AND active = 1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(StoreError::sqlite(
                self.context(&format!("reading access key {id}")),
            ))?;
        let Some((Some(sealed), scope)) = row else {
            return Ok(None);
        };
        let mut secret = self
            .sealer
            .open_string(Purpose::AccessKeySecret, id, &sealed)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the secret of access key {id} in {} cannot be decrypted",
                    self.db_path.display()
                ))
            })?;
        Ok(Some((
            std::mem::take(&mut *secret),
            KeyScope::from_column(&scope),
        )))
    }

    /// Every access key, active or revoked, oldest first.
    pub fn list_access_keys(&self) -> Result<Vec<AccessKeyInfo>, StoreError> {
        let err = || StoreError::sqlite(self.context("listing access keys"));
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, description, created, active, scope FROM access_keys \
                 ORDER BY created, id",
            )
            .map_err(err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AccessKeyInfo {
                    id: r.get(0)?,
                    description: r.get(1)?,
                    created: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    active: r.get(3)?,
                    scope: KeyScope::from_column(&r.get::<_, String>(4)?),
                })
            })
            .map_err(err())?;
        rows.collect::<Result<_, _>>().map_err(err())
    }

    /// Revokes an access key for good, unless it is the last active admin key. The check and
    /// the revocation are one statement, so two revocations racing cannot both pass the check
    /// (in this process or another on the same database).
    pub fn revoke_access_key(&self, id: &str) -> Result<Revocation, StoreError> {
        let err = || StoreError::sqlite(self.context(&format!("revoking access key {id}")));
        let conn = self.lock();
        // The sealed secret goes too: a revoked key never comes back, so it has no reason to
        // stay on disk.
        let changed = conn
            .execute(
                "UPDATE access_keys SET active = 0, sealed_secret = NULL \
                 WHERE id = ?1 AND active = 1 AND (scope != 'admin' OR \
                   (SELECT COUNT(*) FROM access_keys WHERE active = 1 AND scope = 'admin') > 1)",
                params![id],
            )
            .map_err(err())?;
        if changed > 0 {
            tracing::info!(access_key = %id, "revoked an access key");
            return Ok(Revocation::Revoked);
        }
        let active: bool = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM access_keys WHERE id = ?1 AND active = 1",
                params![id],
                |r| r.get(0),
            )
            .map_err(err())?;
        Ok(if active {
            Revocation::LastAdmin
        } else {
            Revocation::NoSuchKey
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings_use_the_alphabet() {
        let s = random_string(UPPER_ALNUM, 16).unwrap();
        assert_eq!(s.len(), 16);
        assert!(s.bytes().all(|b| UPPER_ALNUM.contains(&b)));
        assert_ne!(s, random_string(UPPER_ALNUM, 16).unwrap());
    }
}
