//! Access keys in etcd: `access-keys/ID` holds a key's JSON, its secret sealed (and gone once
//! revoked). Revocations compare every active admin key's revision, so that two nodes cannot
//! both revoke "one of two" admin keys.

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use super::mirror::ACCESS_KEYS;
use super::{bounded, lock, Ctx};
use crate::access_keys::{AccessKeyInfo, KeyScope, Revocation, StoredAccessKey};
use crate::error::StoreError;

#[derive(Serialize, Deserialize)]
pub(crate) struct AccessKeyValue {
    description: String,
    created: u64,
    active: bool,
    scope: String,
    /// Hex of the sealed secret; gone once the key is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_secret: Option<String>,
}

impl AccessKeyValue {
    pub(crate) fn from_stored(key: &StoredAccessKey) -> AccessKeyValue {
        AccessKeyValue {
            description: key.info.description.clone(),
            created: key.info.created,
            active: key.info.active,
            scope: key.info.scope.as_str().to_owned(),
            sealed_secret: key.sealed_secret.as_ref().map(hex::encode),
        }
    }

    pub(crate) fn parse(id: &str, value: &[u8]) -> Option<StoredAccessKey> {
        let v: AccessKeyValue = serde_json::from_slice(value).ok()?;
        Some(StoredAccessKey {
            info: AccessKeyInfo {
                id: id.to_owned(),
                description: v.description,
                created: v.created,
                active: v.active,
                scope: KeyScope::from_stored(&v.scope),
            },
            sealed_secret: v.sealed_secret.and_then(|h| hex::decode(h).ok()),
        })
    }
}

impl Ctx {
    pub(crate) async fn put_access_key(
        &self,
        key: StoredAccessKey,
        compares: Vec<Compare>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let value = serde_json::to_vec(&AccessKeyValue::from_stored(&key))
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize an access key: {e}")))?;
        let txn = Txn::new().when(compares).and_then([TxnOp::put(
            self.key(&format!("{ACCESS_KEYS}{}", key.info.id)),
            value,
            None,
        )]);
        let resp = bounded(
            &format!("writing access key {}", key.info.id),
            client.txn(txn),
        )
        .await?;
        if resp.succeeded() {
            self.wait_seen(resp.header().map_or(0, |h| h.revision()))
                .await?;
        }
        Ok(resp.succeeded())
    }

    /// Revokes `id` unless it is the last active admin key: the transaction compares the
    /// revision of every active admin key, so two revocations racing on two nodes cannot both
    /// see "another admin is left".
    pub(crate) async fn revoke(&self, id: &str) -> Result<Revocation, StoreError> {
        loop {
            // Read fresh: the decision must not rest on a copy that is behind.
            self.full_read().await?;
            let keys: Vec<(StoredAccessKey, i64)> = lock(&self.mirror)
                .under(ACCESS_KEYS)
                .filter_map(|(kid, e)| {
                    Some((AccessKeyValue::parse(kid, &e.value)?, e.mod_revision))
                })
                .filter(|(k, _)| k.info.active)
                .collect();
            let Some((target, target_rev)) = keys.iter().find(|(k, _)| k.info.id == id).cloned()
            else {
                return Ok(Revocation::NoSuchKey);
            };
            let compares: Vec<Compare> = if target.info.scope == KeyScope::Admin {
                let admins: Vec<_> = keys
                    .iter()
                    .filter(|(k, _)| k.info.scope == KeyScope::Admin)
                    .collect();
                if admins.len() <= 1 {
                    return Ok(Revocation::LastAdmin);
                }
                admins
                    .iter()
                    .map(|(k, rev)| {
                        Compare::mod_revision(
                            self.key(&format!("{ACCESS_KEYS}{}", k.info.id)),
                            CompareOp::Equal,
                            *rev,
                        )
                    })
                    .collect()
            } else {
                vec![Compare::mod_revision(
                    self.key(&format!("{ACCESS_KEYS}{id}")),
                    CompareOp::Equal,
                    target_rev,
                )]
            };
            let mut revoked = target;
            revoked.info.active = false;
            revoked.sealed_secret = None;
            if self.put_access_key(revoked, compares).await? {
                return Ok(Revocation::Revoked);
            }
        }
    }
}
