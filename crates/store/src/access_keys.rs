//! Access keys for the SigV4-signed API. They live beside the state, not in it: they are
//! credentials, not load-balancer configuration, and the data plane must never see them.

use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::seal::Purpose;
use crate::{Backend, Store};

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
    pub(crate) fn from_stored(s: &str) -> KeyScope {
        KeyScope::parse(s).unwrap_or(KeyScope::ReadOnly)
    }
}

/// An access key as a backend keeps it: what is listed, and the secret sealed (gone once the
/// key is revoked).
#[derive(Debug, Clone)]
pub(crate) struct StoredAccessKey {
    pub info: AccessKeyInfo,
    pub sealed_secret: Option<Vec<u8>>,
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
            .shared
            .sealer
            .seal(Purpose::AccessKeySecret, &id, secret.as_bytes())?;
        let key = StoredAccessKey {
            info: AccessKeyInfo {
                id: id.clone(),
                description: description.to_owned(),
                created: now(),
                active: true,
                scope,
            },
            sealed_secret: Some(sealed),
        };
        match &self.backend {
            Backend::Sqlite(db) => db.insert_access_key(&key)?,
            Backend::Etcd(etcd) => etcd.insert_access_key(&key)?,
        }
        tracing::info!(access_key = %id, scope = scope.as_str(), "created an access key");
        Ok((id, std::mem::take(&mut *secret)))
    }

    /// The secret of an active access key, for verifying a signature; `None` if the key does not
    /// exist or was revoked.
    pub fn access_key_secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.access_key(id)?.map(|(secret, _)| secret))
    }

    /// The scope of an active access key, without opening its secret: what a signed-in
    /// session checks on every page (a revoked key signs out).
    pub fn access_key_scope(&self, id: &str) -> Result<Option<KeyScope>, StoreError> {
        let found = match &self.backend {
            Backend::Sqlite(db) => db.active_access_key(id)?,
            Backend::Etcd(etcd) => etcd.active_access_key(id),
        };
        Ok(found.map(|(_, scope)| scope))
    }

    /// The secret and the scope of an active access key, in one read: what an API call needs to
    /// check its signature and then what it may do. On etcd this reads the node's copy, so that
    /// signed reads keep working while etcd is away.
    pub fn access_key(&self, id: &str) -> Result<Option<(String, KeyScope)>, StoreError> {
        let found = match &self.backend {
            Backend::Sqlite(db) => db.active_access_key(id)?,
            Backend::Etcd(etcd) => etcd.active_access_key(id),
        };
        let Some((sealed, scope)) = found else {
            return Ok(None);
        };
        let mut secret = self
            .shared
            .sealer
            .open_string(Purpose::AccessKeySecret, id, &sealed)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the secret of access key {id} in {} cannot be decrypted",
                    self.describe()
                ))
            })?;
        Ok(Some((std::mem::take(&mut *secret), scope)))
    }

    /// Every access key, active or revoked, oldest first.
    pub fn list_access_keys(&self) -> Result<Vec<AccessKeyInfo>, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.list_access_keys(),
            Backend::Etcd(etcd) => Ok(etcd.list_access_keys()),
        }
    }

    /// Revokes an access key for good, unless it is the last active admin key. Two revocations
    /// racing (in this process, another on the same database, or another node of the fleet)
    /// cannot both pass that check.
    pub fn revoke_access_key(&self, id: &str) -> Result<Revocation, StoreError> {
        let outcome = match &self.backend {
            Backend::Sqlite(db) => db.revoke_access_key(id)?,
            Backend::Etcd(etcd) => etcd.revoke_access_key(id)?,
        };
        if outcome == Revocation::Revoked {
            tracing::info!(access_key = %id, "revoked an access key");
        }
        Ok(outcome)
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
