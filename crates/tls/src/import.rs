//! Importing an uploaded certificate with IAM UploadServerCertificate's checks: one certificate in
//! the body, one private key that matches it, and a chain where each certificate issued the one
//! before it.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{alg_id, CertificateDer};
use rustls::sign::CertifiedKey;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use zeroize::Zeroizing;

use crate::pem::{self, ordinal, Block, KeyKind};
use crate::{crypto_provider, der, TlsError};

/// IAM's own limits on the uploaded text; also what keeps a hostile upload cheap to refuse.
const MAX_BODY_LEN: usize = 16_384;
const MAX_KEY_LEN: usize = 16_384;
const MAX_CHAIN_LEN: usize = 2_097_152;

/// Smaller RSA keys are refused, as by ELB and by every browser.
const MIN_RSA_BITS: usize = 2048;
/// aws-lc-rs signs with RSA keys up to this size.
const MAX_RSA_BITS: usize = 8192;

/// A certificate that passed the checks, ready to serve.
#[derive(Clone)]
pub struct ImportedCertificate {
    /// The leaf followed by the chain, and the signing key.
    pub certified_key: Arc<CertifiedKey>,
    /// The subjectAltName dNSNames, lowercased, or the subject CN when there is none.
    pub dns_names: Vec<String>,
    /// Seconds since the Unix epoch.
    pub not_before: u64,
    /// Seconds since the Unix epoch.
    pub not_after: u64,
    /// The leaf's subject, e.g. `CN=www.example.com, O=Example`.
    pub subject: String,
    /// "RSA-2048", "ECDSA-P256", "ECDSA-P384", "Ed25519", …
    pub key_algorithm: &'static str,
}

impl fmt::Debug for ImportedCertificate {
    // Written by hand so that no signing key can ever reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportedCertificate")
            .field("subject", &self.subject)
            .field("dns_names", &self.dns_names)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key_algorithm", &self.key_algorithm)
            .field(
                "chain_len",
                &self.certified_key.cert.len().saturating_sub(1),
            )
            .finish_non_exhaustive()
    }
}

/// Imports a certificate as the configuration stores it.
pub fn import_stored(
    cert: &fulcrum_model::ServerCertificate,
) -> Result<ImportedCertificate, TlsError> {
    import_certificate(
        &cert.body_pem,
        cert.private_key.expose(),
        cert.chain_pem.as_deref(),
    )
}

/// Parses and checks an uploaded certificate the way IAM UploadServerCertificate does.
///
/// `body_pem` must hold exactly one PEM `CERTIFICATE`; `key_pem` one unencrypted private key
/// (PKCS#8, PKCS#1 RSA or SEC1 EC) matching it; `chain_pem`, when given, one or more certificates
/// where the first issued the body and each next one issued the one before (the last may be a
/// root). Names and signatures are both checked. Keys must be RSA of at least 2048 bits, ECDSA
/// P-256 or P-384, or Ed25519.
pub fn import_certificate(
    body_pem: &str,
    key_pem: &str,
    chain_pem: Option<&str>,
) -> Result<ImportedCertificate, TlsError> {
    let mut ders = vec![read_body(body_pem)?];
    if let Some(chain_pem) = chain_pem.filter(|chain| !chain.trim().is_empty()) {
        ders.extend(read_chain(chain_pem)?);
    }

    let leaf = parse(&ders[0]).map_err(|e| {
        TlsError::MalformedCertificate(format!(
            "the certificate body is not a valid X.509 certificate: {e}"
        ))
    })?;
    let key_algorithm = key_algorithm(&leaf)?;
    let dns_names = dns_names(&leaf)?;
    let subject = leaf.subject().to_string();
    let validity = leaf.validity();
    let not_before = unix_seconds(validity.not_before.timestamp());
    let not_after = unix_seconds(validity.not_after.timestamp());
    let leaf_spki = leaf.public_key().raw.to_vec();

    let mut issued = leaf;
    for (index, der) in ders.iter().enumerate().skip(1) {
        let issuer = parse(der).map_err(|e| {
            TlsError::MalformedChain(format!(
                "the chain's {} certificate is not a valid X.509 certificate: {e}",
                ordinal(index)
            ))
        })?;
        check_issued(&issued, &ders[index - 1], &issuer, index)?;
        issued = issuer;
    }

    // The key's DER stays in a buffer wiped when dropped: the provider's `load_private_key`
    // takes an owned `PrivateKeyDer<'static>` and drops it unwiped, so the same loader it calls
    // (aws-lc-rs's `any_supported_type`, `crypto_provider()` is aws-lc-rs) gets a borrowed one.
    // aws-lc wipes the key it parsed when freeing it.
    let (key_kind, key_der) = read_key(key_pem)?;
    let signing_key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key_kind.der(&key_der))
        .map_err(|e| {
            TlsError::MalformedKey(format!(
                "the private key cannot be loaded as the {key_algorithm} key the certificate \
                 names: {e}"
            ))
        })?;
    let Some(key_spki) = signing_key.public_key() else {
        return Err(TlsError::Internal(format!(
            "cannot tell whether the {key_algorithm} private key matches the certificate"
        )));
    };
    if key_spki.as_ref() != leaf_spki.as_slice() {
        return Err(TlsError::KeyPairMismatch);
    }

    Ok(ImportedCertificate {
        certified_key: Arc::new(CertifiedKey::new(ders, signing_key)),
        dns_names,
        not_before,
        not_after,
        subject,
        key_algorithm,
    })
}

/// What an operator reads about an uploaded certificate, from its body alone (no key is
/// touched): for lists and pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The subjectAltName dNSNames, lowercased, or the subject CN when there is none.
    pub dns_names: Vec<String>,
    /// The leaf's subject, e.g. `CN=www.example.com, O=Example`.
    pub subject: String,
    /// Who signed it, e.g. `CN=Example CA`.
    pub issuer: String,
    /// Seconds since the Unix epoch.
    pub not_after: u64,
    pub key_algorithm: &'static str,
}

/// Reads the summary of a certificate body (as uploaded: checked then).
pub fn summarize_certificate(body_pem: &str) -> Result<CertificateSummary, TlsError> {
    let der = read_body(body_pem)?;
    let leaf = parse(&der).map_err(|e| {
        TlsError::MalformedCertificate(format!(
            "the certificate body is not a valid X.509 certificate: {e}"
        ))
    })?;
    Ok(CertificateSummary {
        dns_names: dns_names(&leaf)?,
        subject: leaf.subject().to_string(),
        issuer: leaf.issuer().to_string(),
        not_after: unix_seconds(leaf.validity().not_after.timestamp()),
        key_algorithm: key_algorithm(&leaf)?,
    })
}

fn read_body(body_pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    let malformed = |msg: String| TlsError::MalformedCertificate(msg);
    if body_pem.len() > MAX_BODY_LEN {
        return Err(malformed(format!(
            "the certificate body is {} bytes long; at most {MAX_BODY_LEN} are accepted",
            body_pem.len()
        )));
    }
    match pem::labels(body_pem)[..] {
        [] => {
            return Err(malformed(
                "the certificate body holds no PEM block; expected one \
                 -----BEGIN CERTIFICATE----- block"
                    .to_string(),
            ))
        }
        ["CERTIFICATE"] => {}
        [label] => {
            return Err(malformed(format!(
                "the certificate body holds a PEM {label} block, not a CERTIFICATE"
            )))
        }
        ref labels => {
            return Err(malformed(format!(
                "the certificate body holds {} PEM blocks; it must hold exactly one CERTIFICATE \
                 (intermediate certificates go in the certificate chain)",
                labels.len()
            )))
        }
    }
    let items =
        pem::decode(body_pem).map_err(|e| malformed(format!("the certificate body: {e}")))?;
    match items.into_iter().next() {
        Some(Block::Certificate(der)) => Ok(der),
        _ => Err(malformed(
            "the certificate body's CERTIFICATE block cannot be read".to_string(),
        )),
    }
}

fn read_chain(chain_pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let malformed = |msg: String| TlsError::MalformedChain(msg);
    if chain_pem.len() > MAX_CHAIN_LEN {
        return Err(malformed(format!(
            "the certificate chain is {} bytes long; at most {MAX_CHAIN_LEN} are accepted",
            chain_pem.len()
        )));
    }
    let labels = pem::labels(chain_pem);
    if labels.is_empty() {
        return Err(malformed(
            "the certificate chain holds no PEM block; expected -----BEGIN CERTIFICATE----- blocks"
                .to_string(),
        ));
    }
    if let Some((index, label)) = labels
        .iter()
        .enumerate()
        .find(|(_, label)| **label != "CERTIFICATE")
    {
        return Err(malformed(format!(
            "the certificate chain's {} PEM block is a {label}, not a CERTIFICATE",
            ordinal(index + 1)
        )));
    }
    let items =
        pem::decode(chain_pem).map_err(|e| malformed(format!("the certificate chain: {e}")))?;
    let ders: Vec<_> = items
        .into_iter()
        .filter_map(|item| match item {
            Block::Certificate(der) => Some(der),
            _ => None,
        })
        .collect();
    if ders.len() != labels.len() {
        return Err(malformed(format!(
            "the certificate chain holds {} CERTIFICATE blocks but only {} can be read",
            labels.len(),
            ders.len()
        )));
    }
    Ok(ders)
}

/// The private key's DER (wiped when dropped) and its encoding.
fn read_key(key_pem: &str) -> Result<(KeyKind, Zeroizing<Vec<u8>>), TlsError> {
    let malformed = |msg: String| TlsError::MalformedKey(msg);
    if key_pem.len() > MAX_KEY_LEN {
        return Err(malformed(format!(
            "the private key is {} bytes long; at most {MAX_KEY_LEN} are accepted",
            key_pem.len()
        )));
    }
    // `openssl ecparam -genkey` writes the curve before the key; it repeats what the key says.
    let labels: Vec<&str> = pem::labels(key_pem)
        .into_iter()
        .filter(|label| *label != "EC PARAMETERS")
        .collect();
    match labels[..] {
        [] => {
            return Err(malformed(
                "the private key holds no PEM block; expected one -----BEGIN PRIVATE KEY-----, \
                 -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY----- block"
                    .to_string(),
            ))
        }
        ["PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"] => {}
        ["ENCRYPTED PRIVATE KEY"] => {
            return Err(malformed(
                "the private key is encrypted; upload it unencrypted \
                 (openssl pkey -in key.pem -out plain.pem)"
                    .to_string(),
            ))
        }
        [label] => {
            return Err(malformed(format!(
                "the private key holds a PEM {label} block, not a private key"
            )))
        }
        ref labels => {
            return Err(malformed(format!(
                "the private key holds {} PEM blocks; it must hold exactly one private key",
                labels.len()
            )))
        }
    }
    let items = pem::decode(key_pem).map_err(|e| malformed(format!("the private key: {e}")))?;
    items
        .into_iter()
        .find_map(|block| match block {
            Block::Key(kind, der) => Some((kind, der)),
            _ => None,
        })
        .ok_or_else(|| malformed("the private key's PEM block cannot be read".to_string()))
}

fn parse<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, String> {
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((rest, _)) if !rest.is_empty() => Err(format!(
            "{} unexpected bytes follow the certificate",
            rest.len()
        )),
        Ok((_, cert)) => Ok(cert),
        Err(x509_parser::nom::Err::Incomplete(_)) => Err("the DER encoding is truncated".into()),
        Err(x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e)) => {
            Err(format!("the DER encoding is malformed ({e})"))
        }
    }
}

/// Names the leaf's key as IAM describes it, refusing the kinds the balancer will not serve.
fn key_algorithm(leaf: &X509Certificate<'_>) -> Result<&'static str, TlsError> {
    let spki = leaf.public_key();
    let algorithm = der::spki_algorithm(spki.raw).ok_or_else(|| {
        TlsError::MalformedCertificate(
            "the certificate body's public key info is malformed".to_string(),
        )
    })?;
    if algorithm == alg_id::RSA_ENCRYPTION.as_ref() {
        let bits = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa_bits(rsa.modulus),
            _ => {
                return Err(TlsError::MalformedCertificate(
                    "the certificate body's RSA public key is malformed".to_string(),
                ))
            }
        };
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(TlsError::UnsupportedKey(format!(
                "the certificate's RSA key has {bits} bits; \
                 RSA keys of {MIN_RSA_BITS} to {MAX_RSA_BITS} bits are supported"
            )));
        }
        return Ok(match bits {
            2048 => "RSA-2048",
            3072 => "RSA-3072",
            4096 => "RSA-4096",
            8192 => "RSA-8192",
            _ => "RSA",
        });
    }
    if algorithm == alg_id::ECDSA_P256.as_ref() {
        Ok("ECDSA-P256")
    } else if algorithm == alg_id::ECDSA_P384.as_ref() {
        Ok("ECDSA-P384")
    } else if algorithm == alg_id::ECDSA_P521.as_ref() {
        Err(TlsError::UnsupportedKey(
            "the certificate's key is ECDSA P-521; ECDSA keys must use P-256 or P-384".to_string(),
        ))
    } else if algorithm == alg_id::ED25519.as_ref() {
        Ok("Ed25519")
    } else {
        Err(TlsError::UnsupportedKey(format!(
            "the certificate's public key algorithm ({}) is not supported; \
             use RSA, ECDSA P-256/P-384 or Ed25519",
            oid_name(&spki.algorithm.algorithm)
        )))
    }
}

/// The modulus length in bits; DER may pad the modulus with a zero byte.
pub(crate) fn rsa_bits(modulus: &[u8]) -> usize {
    let start = modulus
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(modulus.len());
    match modulus[start..].first() {
        Some(first) => (modulus.len() - start) * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

fn dns_names(leaf: &X509Certificate<'_>) -> Result<Vec<String>, TlsError> {
    let san = leaf.subject_alternative_name().map_err(|e| {
        TlsError::MalformedCertificate(format!(
            "the certificate body's subjectAltName extension is malformed: {e}"
        ))
    })?;
    fn push(names: &mut Vec<String>, name: &str) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    let mut names: Vec<String> = Vec::new();
    if let Some(san) = san {
        for general_name in &san.value.general_names {
            if let GeneralName::DNSName(name) = general_name {
                push(&mut names, name);
            }
        }
    }
    if names.is_empty() {
        for cn in leaf.subject().iter_common_name() {
            if let Ok(cn) = cn.as_str() {
                push(&mut names, cn);
            }
        }
    }
    Ok(names)
}

/// An algorithm's short name ("ecdsa-with-SHA256") where known, else its dotted OID.
pub(crate) fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn unix_seconds(timestamp: i64) -> u64 {
    u64::try_from(timestamp).unwrap_or(0)
}

/// Checks that `issuer` (the chain's `index`-th certificate) issued `issued` (the body when
/// `index` is 1, else the chain's previous certificate): by name and by signature.
fn check_issued(
    issued: &X509Certificate<'_>,
    issued_der: &[u8],
    issuer: &X509Certificate<'_>,
    index: usize,
) -> Result<(), TlsError> {
    let issuer_desc = format!("the chain's {} certificate", ordinal(index));
    let issued_desc = match index {
        1 => "the certificate body".to_string(),
        _ => format!("the {}", ordinal(index - 1)),
    };
    let did_not_issue = |why: String| {
        TlsError::MalformedChain(format!("{issuer_desc} did not issue {issued_desc}: {why}"))
    };

    if issued.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(did_not_issue(format!(
            "its issuer is \"{}\" but {issuer_desc}'s subject is \"{}\"",
            issued.issuer(),
            issuer.subject()
        )));
    }

    let signature_alg = der::certificate_signature_algorithm(issued_der)
        .ok_or_else(|| did_not_issue("its signature algorithm cannot be read".to_string()))?;
    let spki = issuer.public_key();
    let key_alg = der::spki_algorithm(spki.raw)
        .ok_or_else(|| did_not_issue("the issuer's public key info is malformed".to_string()))?;
    let provider = crypto_provider();
    let verifier = provider
        .signature_verification_algorithms
        .all
        .iter()
        .find(|alg| {
            alg.signature_alg_id().as_ref() == signature_alg
                && alg.public_key_alg_id().as_ref() == key_alg
        })
        .ok_or_else(|| {
            did_not_issue(format!(
                "it is signed with {} but the issuer's key is {}; the algorithm is unsupported \
                 or does not fit that key",
                oid_name(&issued.signature_algorithm.algorithm),
                oid_name(&spki.algorithm.algorithm)
            ))
        })?;
    verifier
        .verify_signature(
            &spki.subject_public_key.data,
            issued.tbs_certificate.as_ref(),
            &issued.signature_value.data,
        )
        .map_err(|_| {
            did_not_issue(format!(
                "its signature does not verify with {issuer_desc}'s public key"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::rsa_bits;

    #[test]
    fn rsa_bits_ignore_padding() {
        assert_eq!(rsa_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(rsa_bits(&[0x7f, 0]), 15);
        assert_eq!(rsa_bits(&[0, 0]), 0);
        assert_eq!(rsa_bits(&[]), 0);
    }
}
