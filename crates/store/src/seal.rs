//! AES-256-GCM sealing of secrets at rest.
//!
//! A sealed value is `VERSION || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The AAD names
//! what the value is and whose it is, so a sealed key copied onto another row (another
//! certificate, or an access key) fails to open instead of quietly serving the wrong secret.

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::master_key::MasterKey;

/// Lets a future format (another cipher, a key id for rotation) coexist with today's rows.
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// What a sealed value is for; becomes the AAD together with the owner's id.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    CertificateKey,
    AccessKeySecret,
    /// A known value sealed when the database is created, so a wrong master key is detected at
    /// open time even before any certificate exists.
    KeyCheck,
    /// A secret of the node itself (see `node_secrets`).
    NodeSecret,
}

impl Purpose {
    fn aad(self, id: &str) -> Vec<u8> {
        let prefix: &[u8] = match self {
            Purpose::CertificateKey => b"cert:",
            Purpose::AccessKeySecret => b"access-key:",
            Purpose::KeyCheck => b"key-check:",
            Purpose::NodeSecret => b"node-secret:",
        };
        [prefix, id.as_bytes()].concat()
    }
}

pub(crate) struct Sealer {
    key: RandomizedNonceKey,
}

impl Sealer {
    pub(crate) fn new(master: &MasterKey) -> Result<Sealer, StoreError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, master.bytes())
            .map_err(|_| StoreError::Crypto("loading the master key into AES-256-GCM".into()))?;
        Ok(Sealer { key })
    }

    /// Seals `plaintext` under a fresh random nonce.
    pub(crate) fn seal(
        &self,
        purpose: Purpose,
        id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        // Reserved up front so appending the tag never reallocates and leaves a stray copy of the
        // plaintext in freed memory.
        let mut in_out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        in_out.extend_from_slice(plaintext);
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(purpose.aad(id)), &mut in_out)
            .map_err(|_| StoreError::Crypto(format!("sealing {purpose:?} for {id}")))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens a sealed value. `None` means it is not a value sealed by this key for this purpose
    /// and id; the caller knows which of those is the likely cause and says so.
    pub(crate) fn open(
        &self,
        purpose: Purpose,
        id: &str,
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let (&version, rest) = sealed.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(purpose.aad(id)), &mut buf[..])
            .ok()?
            .len();
        buf.truncate(len);
        Some(buf)
    }

    /// Opens a sealed UTF-8 string (PEM keys, access-key secrets).
    pub(crate) fn open_string(
        &self,
        purpose: Purpose,
        id: &str,
        sealed: &[u8],
    ) -> Option<Zeroizing<String>> {
        let mut bytes = self.open(purpose, id, sealed)?;
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(s) => Some(Zeroizing::new(s)),
            Err(e) => {
                // Dropped through Zeroizing so the not-quite-text secret is wiped too.
                drop(Zeroizing::new(e.into_bytes()));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let sealer = Sealer::new(&MasterKey::generate()).unwrap();
        let a = sealer
            .seal(Purpose::CertificateKey, "C1", b"secret")
            .unwrap();
        let b = sealer
            .seal(Purpose::CertificateKey, "C1", b"secret")
            .unwrap();
        assert_ne!(a, b, "each seal uses a fresh nonce");
        assert_eq!(
            &sealer.open(Purpose::CertificateKey, "C1", &a).unwrap()[..],
            b"secret"
        );
        assert!(sealer.open(Purpose::CertificateKey, "C2", &a).is_none());
        assert!(sealer.open(Purpose::AccessKeySecret, "C1", &a).is_none());
        let other = Sealer::new(&MasterKey::generate()).unwrap();
        assert!(other.open(Purpose::CertificateKey, "C1", &a).is_none());
        let mut tampered = a.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer
            .open(Purpose::CertificateKey, "C1", &tampered)
            .is_none());
        assert!(sealer
            .open(Purpose::CertificateKey, "C1", &a[..10])
            .is_none());
        assert!(sealer.open(Purpose::CertificateKey, "C1", &[]).is_none());
    }
}
