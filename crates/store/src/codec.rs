//! The state as both backends keep it: JSON without private keys, and each certificate's key
//! sealed on its own under the certificate's id. Encoding and decoding live here once, so that
//! SQLite and etcd agree byte for byte on what a revision is.

use std::collections::HashMap;

use fulcrum_model::{ModelError, PrivateKeyPem, Snapshot, State};

use crate::error::StoreError;
use crate::seal::{Purpose, Sealer};

/// What a commit writes: the state's JSON, the sealed keys of certificates that are new or have
/// a new key, and the ids of certificates whose keys go.
#[derive(Clone)]
pub(crate) struct Encoded {
    pub json: String,
    pub put_keys: Vec<(String, Vec<u8>)>,
    pub delete_keys: Vec<String>,
}

/// Encodes `new` as the successor of `old`: only keys that changed are sealed again.
pub(crate) fn encode(sealer: &Sealer, old: &State, new: &State) -> Result<Encoded, StoreError> {
    check_persistable(new)?;
    let json = serde_json::to_string(new)
        .map_err(|e| StoreError::Corrupt(format!("cannot serialize the state: {e}")))?;
    let mut put_keys = Vec::new();
    for (id, cert) in &new.certificates {
        let unchanged =
            matches!(old.certificates.get(id), Some(o) if o.private_key == cert.private_key);
        if !unchanged {
            let sealed = sealer.seal(
                Purpose::CertificateKey,
                id,
                cert.private_key.expose().as_bytes(),
            )?;
            put_keys.push((id.clone(), sealed));
        }
    }
    let delete_keys = old
        .certificates
        .keys()
        .filter(|id| !new.certificates.contains_key(*id))
        .cloned()
        .collect();
    Ok(Encoded {
        json,
        put_keys,
        delete_keys,
    })
}

/// The snapshot at `revision` from its JSON and the sealed keys, every key unsealed. `place`
/// names where it was read from, for messages.
pub(crate) fn decode(
    sealer: &Sealer,
    revision: u64,
    json: &str,
    mut sealed: HashMap<String, Vec<u8>>,
    place: &str,
) -> Result<Snapshot, StoreError> {
    let mut state: State = serde_json::from_str(json).map_err(|e| {
        StoreError::Corrupt(format!(
            "the state at revision {revision} in {place} is not valid: {e}"
        ))
    })?;
    for (id, cert) in &mut state.certificates {
        let blob = sealed.remove(id).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "certificate {id} ('{}') has no private key in {place}",
                cert.name
            ))
        })?;
        let mut pem = sealer
            .open_string(Purpose::CertificateKey, id, &blob)
            .ok_or_else(|| {
                // The master key passed its check, so this value was altered or moved from
                // another id.
                StoreError::Corrupt(format!(
                    "the private key of certificate {id} ('{}') in {place} cannot be decrypted",
                    cert.name
                ))
            })?;
        cert.private_key = PrivateKeyPem::new(std::mem::take(&mut *pem));
    }
    if !sealed.is_empty() {
        tracing::warn!(
            place,
            count = sealed.len(),
            "private keys without a certificate in the state; they are ignored"
        );
    }
    Ok(Snapshot { revision, state })
}

/// Refuses states the store could not load back: a certificate filed under another id than its
/// own would be unsealed with the wrong AAD, and one without a key cannot serve TLS.
fn check_persistable(state: &State) -> Result<(), ModelError> {
    for (id, cert) in &state.certificates {
        if cert.id != *id {
            return Err(ModelError::InvalidConfiguration(format!(
                "certificate {} is filed under id {id}",
                cert.id
            )));
        }
        if cert.private_key.is_empty() {
            return Err(ModelError::Validation(format!(
                "certificate {} ('{}') has no private key",
                cert.id, cert.name
            )));
        }
    }
    Ok(())
}

/// The value sealed when a store is created, so that a wrong master key is detected at open
/// time even before any certificate exists.
pub(crate) const KEY_CHECK_NAME: &str = "key_check";
pub(crate) const KEY_CHECK_VALUE: &[u8] = b"fulcrum master key check v1";

/// Checks a sealed key-check value against the master key `sealer` holds.
pub(crate) fn check_master_key(
    sealer: &Sealer,
    sealed: &[u8],
    place: &str,
) -> Result<(), StoreError> {
    match sealer.open(Purpose::KeyCheck, KEY_CHECK_NAME, sealed) {
        Some(value) if value.as_slice() == KEY_CHECK_VALUE => Ok(()),
        _ => Err(StoreError::MasterKey(format!(
            "this is not the master key {place} was created with; use the original master.key \
             or FULCRUM_MASTER_KEY"
        ))),
    }
}

pub(crate) fn seal_key_check(sealer: &Sealer) -> Result<Vec<u8>, StoreError> {
    sealer.seal(Purpose::KeyCheck, KEY_CHECK_NAME, KEY_CHECK_VALUE)
}
