//! Choosing a listener's certificate by the name the client asked for (SNI).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::ImportedCertificate;

/// Certificates for one listener, chosen by SNI: an exact name first (case-insensitive, trailing
/// dot ignored), then a wildcard `*.example.com` covering exactly one more label, otherwise the
/// default. Lookups are two hash probes, whatever the number of certificates.
pub struct SniTable {
    default: Arc<CertifiedKey>,
    /// Several certificates may cover one name (an RSA and an ECDSA one, or an old and a renewed
    /// one); they are kept in the order given so that the first one the client can use wins.
    exact: HashMap<Box<str>, Vec<Arc<CertifiedKey>>>,
    /// Keyed by the domain under the `*.`: `*.example.com` is stored as `example.com`.
    wildcard: HashMap<Box<str>, Vec<Arc<CertifiedKey>>>,
    certificates: usize,
}

impl SniTable {
    /// A table serving `default` to clients that send no name or a name nothing covers. The
    /// default's names are looked up like any other's; on a name that several certificates cover,
    /// the earlier one is preferred.
    pub fn new(
        default: Arc<CertifiedKey>,
        default_names: &[String],
        others: impl IntoIterator<Item = (Arc<CertifiedKey>, Vec<String>)>,
    ) -> SniTable {
        let mut table = SniTable {
            default: default.clone(),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            certificates: 1,
        };
        table.insert(&default, default_names);
        for (key, names) in others {
            table.insert(&key, &names);
            table.certificates += 1;
        }
        table
    }

    /// A table from imported certificates, the first being the default; `None` when there is none.
    pub fn from_imported<'a>(
        certificates: impl IntoIterator<Item = &'a ImportedCertificate>,
    ) -> Option<SniTable> {
        let mut certificates = certificates.into_iter();
        let first = certificates.next()?;
        Some(SniTable::new(
            first.certified_key.clone(),
            &first.dns_names,
            certificates.map(|c| (c.certified_key.clone(), c.dns_names.clone())),
        ))
    }

    fn insert(&mut self, key: &Arc<CertifiedKey>, names: &[String]) {
        for name in names {
            let name = normalize(name);
            let (map, name) = match name.strip_prefix("*.") {
                Some(parent) => (&mut self.wildcard, parent),
                None => (&mut self.exact, &*name),
            };
            // Partial wildcards (`f*.example.com`) are not honoured by browsers either.
            if name.is_empty() || name.contains('*') {
                continue;
            }
            let keys = map.entry(name.into()).or_default();
            if !keys.iter().any(|k| Arc::ptr_eq(k, key)) {
                keys.push(key.clone());
            }
        }
    }

    /// The certificate for `server_name`: the first one covering it, or the default.
    pub fn resolve(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        match server_name.and_then(|name| self.candidates(name)) {
            Some(keys) => keys[0].clone(),
            None => self.default.clone(),
        }
    }

    /// Like [`resolve`](Self::resolve), but among the certificates covering the name prefers the
    /// first whose key can sign with one of `schemes` (the client's signature algorithms), so
    /// that an RSA certificate can sit next to an ECDSA one for older clients.
    pub fn resolve_for(
        &self,
        server_name: Option<&str>,
        schemes: &[SignatureScheme],
    ) -> Arc<CertifiedKey> {
        match server_name.and_then(|name| self.candidates(name)) {
            Some([only]) => only.clone(),
            Some(keys) => keys
                .iter()
                .find(|k| k.key.choose_scheme(schemes).is_some())
                .unwrap_or(&keys[0])
                .clone(),
            None => self.default.clone(),
        }
    }

    fn candidates(&self, server_name: &str) -> Option<&[Arc<CertifiedKey>]> {
        let name = normalize(server_name);
        if let Some(keys) = self.exact.get(&*name) {
            return Some(keys);
        }
        let (label, parent) = name.split_once('.')?;
        if label.is_empty() {
            return None;
        }
        self.wildcard.get(parent).map(Vec::as_slice)
    }

    /// The default certificate.
    pub fn default_key(&self) -> &Arc<CertifiedKey> {
        &self.default
    }

    /// How many certificates the table was built from, the default included.
    pub fn len(&self) -> usize {
        self.certificates
    }

    /// Never true: a table always has its default; here for clippy's sake and symmetry.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Debug for SniTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniTable")
            .field("certificates", &self.certificates)
            .field("exact_names", &self.exact.len())
            .field("wildcard_names", &self.wildcard.len())
            .finish()
    }
}

/// Lowercase without the trailing root dot; borrows in the common case, where rustls has already
/// lowercased the SNI name, so the handshake path does not allocate.
fn normalize(name: &str) -> Cow<'_, str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}
