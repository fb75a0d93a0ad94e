//! Server certificates as the configuration holds them. Parsing and checking PEM is the `tls`
//! crate's job; here a certificate is already known to be good.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A PEM private key. It never appears in `Debug` output and is wiped from memory when dropped;
/// the store seals it before it touches the disk, so it is never serialized with the state.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PrivateKeyPem(Zeroizing<String>);

impl PrivateKeyPem {
    pub fn new(pem: String) -> Self {
        PrivateKeyPem(Zeroizing::new(pem))
    }

    /// The key itself, for the TLS engine and for sealing; nothing else should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// A key/value tag as IAM and ELB keep them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// An uploaded server certificate: its identity, its public parts and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCertificate {
    /// IAM's ServerCertificateId: stable across renames, so listeners refer to it.
    pub id: String,
    pub name: String,
    pub path: String,
    /// Seconds since the Unix epoch.
    pub upload_date: u64,
    /// The leaf's notAfter, seconds since the Unix epoch.
    pub expiration: u64,
    pub body_pem: String,
    pub chain_pem: Option<String>,
    /// Sealed separately by the store; absent from the serialized state.
    #[serde(skip)]
    pub private_key: PrivateKeyPem,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_stay_out_of_debug_and_serialization() {
        let cert = ServerCertificate {
            id: "ASCAEXAMPLE".into(),
            name: "www".into(),
            path: "/".into(),
            upload_date: 0,
            expiration: 0,
            body_pem: "BODY".into(),
            chain_pem: None,
            private_key: PrivateKeyPem::new("-----BEGIN PRIVATE KEY-----SECRET".into()),
            tags: vec![],
        };
        assert!(!format!("{cert:?}").contains("SECRET"));
    }
}
