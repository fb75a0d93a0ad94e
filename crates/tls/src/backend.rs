//! The client side of TLS from the balancer to its instances: re-encryption (HTTPS and SSL instance
//! protocols), `HTTPS:` and `SSL:` health checks, and the balancer's client certificate (mTLS).
//!
//! ELB authenticates instances only by public key: with no backend authentication policy it accepts
//! any instance certificate (self-signed, expired, for any name); with a
//! `BackendServerAuthenticationPolicyType` policy it accepts only certificates carrying one of the
//! policy's `PublicKeyPolicyType` keys. Either way the instance must prove that it holds the private
//! key of the certificate it presents: the handshake signature is always verified, so "accept any
//! certificate" never means "accept anyone who replays a certificate".
//!
//! How to get the key to pin, from the instance's certificate file or from the running instance
//! (either output can be given as the `PublicKey` attribute):
//!
//! ```text
//! openssl x509 -in instance.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl base64 -A
//! openssl s_client -connect 10.0.0.5:443 </dev/null 2>/dev/null | openssl x509 -noout -pubkey
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{alg_id, CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::sign::SingleCertAndKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, PeerMisbehaved,
    SignatureScheme,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::import::{oid_name, rsa_bits};
use crate::pem::ordinal;
use crate::{crypto_provider, der, ImportedCertificate, TlsError};

/// Sessions remembered per client configuration (one per backend settings): enough for every
/// instance of a large load balancer to resume, a few hundred bytes each.
const SESSION_CACHE_SIZE: usize = 4096;

/// A `PublicKey` attribute longer than this is not a public key (an 8192-bit RSA certificate in
/// PEM is under 4 KiB).
const MAX_ATTRIBUTE_LEN: usize = 65_536;

/// RSA keys the handshake verifiers of the crypto provider accept.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// How the balancer authenticates instances and itself to them, per (load balancer, instance
/// port).
///
/// Equality and hashing compare the pinned keys in order and the client certificate by its
/// certificate chain, so the settings can key a cache of [`backend_client_config`]s.
#[derive(Clone, Default)]
pub struct BackendTlsSettings {
    /// Public keys (DER SubjectPublicKeyInfo, see [`parse_public_key`]) an instance certificate
    /// must carry one of; empty = accept any certificate (what ELB does without a
    /// `BackendServerAuthenticationPolicyType`).
    pub pinned_keys: Vec<Vec<u8>>,
    /// A client certificate to present to instances (mTLS): an uploaded certificate, resolved by
    /// the caller. It must allow TLS client authentication (see [`check_client_certificate`]).
    pub client_certificate: Option<Arc<ImportedCertificate>>,
}

impl BackendTlsSettings {
    /// True when instance certificates are not checked at all (beyond proof of key possession).
    pub fn accepts_any_certificate(&self) -> bool {
        self.pinned_keys.is_empty()
    }
}

impl PartialEq for BackendTlsSettings {
    fn eq(&self, other: &Self) -> bool {
        self.pinned_keys == other.pinned_keys
            && match (&self.client_certificate, &other.client_certificate) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    Arc::ptr_eq(a, b) || a.certified_key.cert == b.certified_key.cert
                }
                _ => false,
            }
    }
}

impl Eq for BackendTlsSettings {}

impl Hash for BackendTlsSettings {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.pinned_keys.hash(state);
        self.client_certificate
            .as_ref()
            .map(|cert| &cert.certified_key.cert)
            .hash(state);
    }
}

impl fmt::Debug for BackendTlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .pinned_keys
            .iter()
            .map(|key| base64::engine::general_purpose::STANDARD.encode(key))
            .collect();
        f.debug_struct("BackendTlsSettings")
            .field("pinned_keys", &keys)
            .field(
                "client_certificate",
                &self.client_certificate.as_ref().map(|c| &c.subject),
            )
            .finish()
    }
}

/// Why the balancer refused an instance's certificate, found inside the `rustls::Error` of a failed
/// handshake with [`InstanceCertificateError::of`] (or [`InstanceCertificateError::of_io`] for
/// the `std::io::Error` that tokio-rustls returns).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstanceCertificateError {
    /// The certificate's public key is not one of the pinned keys.
    KeyNotPinned,
    /// The certificate's key is of a kind or size that no handshake signature can be verified
    /// with; the text says which.
    UnusableKey(String),
}

impl InstanceCertificateError {
    /// The balancer's reason inside a handshake error, if that is why the handshake failed.
    pub fn of(error: &rustls::Error) -> Option<&InstanceCertificateError> {
        match error {
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                other.0.downcast_ref::<InstanceCertificateError>()
            }
            _ => None,
        }
    }

    /// As [`InstanceCertificateError::of`], for the I/O error wrapping a rustls error.
    pub fn of_io(error: &std::io::Error) -> Option<&InstanceCertificateError> {
        Self::of(error.get_ref()?.downcast_ref::<rustls::Error>()?)
    }

    fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(self))))
    }
}

impl fmt::Display for InstanceCertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceCertificateError::KeyNotPinned => f.write_str(
                "the instance's certificate public key is not one of the backend authentication \
                 policy's keys",
            ),
            InstanceCertificateError::UnusableKey(why) => {
                write!(f, "the instance's certificate cannot be used: {why}")
            }
        }
    }
}

// rustls prints `CertificateError::Other` with `{:?}`; the message is what an operator needs.
impl fmt::Debug for InstanceCertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for InstanceCertificateError {}

/// Verifies instance certificates by public key only, never by chain, name or validity dates,
/// and always verifies the handshake signature against the presented certificate's key.
pub struct InstanceCertVerifier {
    check: KeyCheck,
    algorithms: WebPkiSupportedAlgorithms,
}

enum KeyCheck {
    /// Any certificate whose key signs the handshake: protects against passive eavesdropping
    /// only, as ELB does without a backend authentication policy.
    DangerousAcceptAnyCertificate,
    Pinned(Vec<Vec<u8>>),
}

impl InstanceCertVerifier {
    /// Accepts any instance certificate: self-signed, expired, for any name, from anyone who holds
    /// its private key. An active attacker between the balancer and the instance can present their
    /// own certificate; pin the instances' keys to prevent that.
    pub fn dangerous_accept_any_certificate() -> Self {
        InstanceCertVerifier {
            check: KeyCheck::DangerousAcceptAnyCertificate,
            algorithms: crypto_provider().signature_verification_algorithms,
        }
    }

    /// Accepts only instance certificates whose SubjectPublicKeyInfo is one of `keys` (DER). Each
    /// key must be well formed and usable; there must be at least one.
    pub fn pinned(keys: Vec<Vec<u8>>) -> Result<Self, TlsError> {
        if keys.is_empty() {
            return Err(TlsError::Config(
                "a backend authentication policy needs at least one public key".to_string(),
            ));
        }
        for (index, key) in keys.iter().enumerate() {
            let spki = parse_spki(key).ok_or_else(|| {
                TlsError::Config(format!(
                    "the backend authentication policy's {} public key is not a DER \
                     SubjectPublicKeyInfo",
                    ordinal(index + 1)
                ))
            })?;
            usable_key(&spki).map_err(|why| {
                TlsError::Config(format!(
                    "the backend authentication policy's {} public key cannot be used: {why}",
                    ordinal(index + 1)
                ))
            })?;
        }
        Ok(InstanceCertVerifier {
            check: KeyCheck::Pinned(keys),
            algorithms: crypto_provider().signature_verification_algorithms,
        })
    }
}

impl fmt::Debug for InstanceCertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.check {
            KeyCheck::DangerousAcceptAnyCertificate => f
                .debug_tuple("InstanceCertVerifier")
                .field(&"DangerousAcceptAnyCertificate")
                .finish(),
            KeyCheck::Pinned(keys) => f
                .debug_struct("InstanceCertVerifier")
                .field("pinned_keys", &keys.len())
                .finish(),
        }
    }
}

impl ServerCertVerifier for InstanceCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let leaf = parse_certificate(end_entity)?;
        let spki = leaf.public_key();
        if let KeyCheck::Pinned(keys) = &self.check {
            if !keys.iter().any(|key| key.as_slice() == spki.raw) {
                return Err(InstanceCertificateError::KeyNotPinned.into_rustls());
            }
        }
        // Said here rather than as a bare bad signature later: an instance with a 1024-bit RSA
        // key is a configuration to fix, not an attack.
        usable_key(spki).map_err(|why| InstanceCertificateError::UnusableKey(why).into_rustls())?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Not rustls::crypto::verify_tls12_signature: it parses the certificate with webpki, which
        // refuses X.509 v1 certificates, and instances' self-signed certificates are often v1
        // (ELB's own documentation example is). This is the same check on the parsed key.
        let leaf = parse_certificate(cert)?;
        let spki = leaf.public_key();
        let candidates = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        let key_alg = der::spki_algorithm(spki.raw).ok_or(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ))?;
        let alg = candidates
            .iter()
            .find(|alg| alg.public_key_alg_id().as_ref() == key_alg)
            .ok_or(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))?;
        alg.verify_signature(&spki.subject_public_key.data, message, dss.signature())
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let leaf = parse_certificate(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(leaf.public_key().raw),
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A rustls client configuration for connections to instances (traffic and health checks alike):
/// the aws-lc-rs provider, TLS 1.2 and 1.3, `alpn` as given (`[b"http/1.1"]` for HTTPS instances,
/// none for SSL instances), session resumption, and an [`InstanceCertVerifier`] for `settings`.
///
/// SNI is sent only when the caller connects with a `ServerName::DnsName`; with
/// `ServerName::IpAddress` (an instance known by its address) none is sent.
///
/// Build one per distinct settings and reuse it: its session cache is what lets reconnections
/// resume. A resumed session skips certificate checks, so a configuration must never be shared
/// between different settings.
pub fn backend_client_config(
    settings: &BackendTlsSettings,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier = if settings.pinned_keys.is_empty() {
        InstanceCertVerifier::dangerous_accept_any_certificate()
    } else {
        InstanceCertVerifier::pinned(settings.pinned_keys.clone())?
    };
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(format!("rustls refused the TLS settings: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match &settings.client_certificate {
        Some(cert) => {
            check_client_certificate(cert)?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(
                cert.certified_key.clone(),
            )))
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    config.resumption = Resumption::in_memory_sessions(SESSION_CACHE_SIZE);
    Ok(Arc::new(config))
}

/// Checks that a certificate can authenticate the balancer to instances: when it has an extended
/// key usage, that usage must include TLS client authentication, or every instance that checks
/// (OpenSSL, Go, rustls all do) refuses it. Certificates issued for web servers often allow
/// server authentication only.
pub fn check_client_certificate(cert: &ImportedCertificate) -> Result<(), TlsError> {
    let leaf_der = cert.certified_key.cert.first().ok_or_else(|| {
        TlsError::Config("the client certificate holds no certificate".to_string())
    })?;
    let (_, leaf) = X509Certificate::from_der(leaf_der.as_ref()).map_err(|e| {
        TlsError::MalformedCertificate(format!(
            "the client certificate is not a valid X.509 certificate: {e}"
        ))
    })?;
    let usage = leaf.extended_key_usage().map_err(|e| {
        TlsError::MalformedCertificate(format!(
            "the client certificate's extended key usage cannot be read: {e}"
        ))
    })?;
    match usage {
        Some(usage) if !usage.value.client_auth && !usage.value.any => {
            Err(TlsError::Config(format!(
                "the certificate \"{}\" cannot authenticate the balancer to instances: its \
                 extended key usage does not include TLS client authentication (clientAuth); \
                 use a certificate issued with clientAuth or without an extended key usage",
                cert.subject
            )))
        }
        _ => Ok(()),
    }
}

/// Parses ELB's `PublicKeyPolicyType` `PublicKey` attribute into a DER SubjectPublicKeyInfo.
///
/// ELB documents the attribute as the base64 of the public key; accepted are the base64 of a DER
/// SubjectPublicKeyInfo (what `openssl pkey -pubout -outform DER` writes), of a DER certificate
/// (ELB's documentation example) or of a PKCS#1 RSA public key, with or without whitespace and
/// line breaks; or PEM: a `PUBLIC KEY`, an `RSA PUBLIC KEY` or `CERTIFICATE` blocks (the first,
/// the instance's own, is used), even with its line breaks lost. The key must be one the balancer
/// can verify handshakes with: RSA of 2048 to 8192 bits, ECDSA or Ed25519. A private key is
/// refused without being decoded. Errors are [`TlsError::Config`].
pub fn parse_public_key(attribute: &str) -> Result<Vec<u8>, TlsError> {
    let config = |msg: String| TlsError::Config(format!("the PublicKey attribute {msg}"));
    let text = attribute.trim();
    if text.is_empty() {
        return Err(config(
            "is empty; give the base64 of the instance's DER public key, or its PEM".to_string(),
        ));
    }
    if text.len() > MAX_ATTRIBUTE_LEN {
        return Err(config(format!(
            "is {} bytes long; at most {MAX_ATTRIBUTE_LEN} are accepted",
            text.len()
        )));
    }
    let spki = if text.contains("-----BEGIN") {
        spki_from_pem(text).map_err(config)?
    } else {
        let der = decode_base64(text)
            .map_err(|e| config(format!("is neither PEM nor valid base64 ({e})")))?;
        spki_from_der(&der).map_err(config)?
    };
    let parsed = parse_spki(&spki)
        .ok_or_else(|| config("holds a malformed SubjectPublicKeyInfo".to_string()))?;
    usable_key(&parsed).map_err(|why| config(format!("names a key that cannot be used: {why}")))?;
    Ok(spki)
}

/// The DER SubjectPublicKeyInfo of the (first) certificate in `cert_pem`: the value to pin for an
/// instance serving that certificate. On the command line, for the `PublicKey` attribute:
///
/// ```text
/// openssl x509 -in instance.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl base64 -A
/// ```
pub fn certificate_public_key(cert_pem: &str) -> Result<Vec<u8>, TlsError> {
    let malformed = |msg: String| TlsError::MalformedCertificate(format!("the certificate {msg}"));
    let blocks = pem_blocks(cert_pem).map_err(malformed)?;
    match blocks.first() {
        None => Err(malformed(
            "holds no PEM block; expected a -----BEGIN CERTIFICATE----- block".to_string(),
        )),
        Some(block) if block.label != "CERTIFICATE" => Err(malformed(format!(
            "holds a PEM {} block, not a CERTIFICATE",
            block.label
        ))),
        Some(block) => {
            let der = decode_base64(block.body)
                .map_err(|e| malformed(format!("PEM block is not valid base64 ({e})")))?;
            certificate_spki(&der)
                .ok_or_else(|| malformed("is not a valid DER X.509 certificate".to_string()))
        }
    }
}

struct PemBlock<'a> {
    label: &'a str,
    body: &'a str,
}

/// The PEM blocks in `text`, found by their markers alone so that a block whose line breaks were
/// turned into spaces (a shell argument, a JSON string) still reads.
fn pem_blocks(text: &str) -> Result<Vec<PemBlock<'_>>, String> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start + BEGIN.len()..];
        let label_end = after_begin
            .find("-----")
            .ok_or_else(|| "has a malformed PEM begin line".to_string())?;
        let label = after_begin[..label_end].trim();
        let after_label = &after_begin[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = after_label.find(&end_marker).ok_or_else(|| {
            format!("has a truncated PEM {label} block: its line \"{end_marker}\" is missing")
        })?;
        blocks.push(PemBlock {
            label,
            body: &after_label[..body_end],
        });
        rest = &after_label[body_end + end_marker.len()..];
    }
    Ok(blocks)
}

fn spki_from_pem(text: &str) -> Result<Vec<u8>, String> {
    let blocks = pem_blocks(text)?;
    // Checked before anything is decoded: a private key pasted by mistake is never read.
    if let Some(block) = blocks.iter().find(|b| b.label.contains("PRIVATE KEY")) {
        return Err(format!(
            "holds a private key (a PEM {} block); give the public key instead \
             (openssl pkey -in key.pem -pubout) and keep the private key secret",
            block.label
        ));
    }
    let decode = |block: &PemBlock<'_>| {
        decode_base64(block.body).map_err(|e| {
            format!(
                "holds a PEM {} block that is not valid base64 ({e})",
                block.label
            )
        })
    };
    let only = |what: &str| {
        format!(
            "holds {} PEM blocks; a {what} must be the only one",
            blocks.len()
        )
    };
    match blocks.first().map(|b| b.label) {
        None => Err("holds no complete PEM block".to_string()),
        Some("PUBLIC KEY") if blocks.len() == 1 => {
            let der = decode(&blocks[0])?;
            parse_spki(&der).map(|_| der.clone()).ok_or_else(|| {
                "holds a PUBLIC KEY block that is not a valid public key".to_string()
            })
        }
        Some("RSA PUBLIC KEY") if blocks.len() == 1 => {
            let der = decode(&blocks[0])?;
            if !der::is_rsa_public_key(&der) {
                return Err("holds an RSA PUBLIC KEY block that is not a valid RSA key".to_string());
            }
            Ok(der::rsa_spki(&der))
        }
        Some(label @ ("PUBLIC KEY" | "RSA PUBLIC KEY")) => Err(only(label)),
        Some("CERTIFICATE") => {
            if let Some(other) = blocks.iter().find(|b| b.label != "CERTIFICATE") {
                return Err(format!(
                    "holds a PEM {} block after a CERTIFICATE; expected certificates only",
                    other.label
                ));
            }
            let der = decode(&blocks[0])?;
            certificate_spki(&der).ok_or_else(|| {
                "holds a CERTIFICATE block that is not a valid certificate".to_string()
            })
        }
        Some(label) => Err(format!(
            "holds a PEM {label} block; expected a PUBLIC KEY or a CERTIFICATE"
        )),
    }
}

/// Tells apart the DER encodings an operator may have base64-encoded by their outer shape.
fn spki_from_der(der: &[u8]) -> Result<Vec<u8>, String> {
    if parse_spki(der).is_some() {
        return Ok(der.to_vec());
    }
    if let Some(spki) = certificate_spki(der) {
        return Ok(spki);
    }
    if der::is_rsa_public_key(der) {
        return Ok(der::rsa_spki(der));
    }
    if der::looks_like_private_key(der) {
        return Err("is a private key; give the public key instead \
             (openssl pkey -in key.pem -pubout -outform DER | openssl base64 -A) and keep the \
             private key secret"
            .to_string());
    }
    Err(format!(
        "decodes to {} bytes that are neither a DER SubjectPublicKeyInfo nor a DER certificate",
        der.len()
    ))
}

fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    LENIENT.decode(compact)
}

/// A SubjectPublicKeyInfo that fills `der` exactly.
fn parse_spki(der: &[u8]) -> Option<SubjectPublicKeyInfo<'_>> {
    match SubjectPublicKeyInfo::from_der(der) {
        Ok(([], spki)) => Some(spki),
        _ => None,
    }
}

fn certificate_spki(der: &[u8]) -> Option<Vec<u8>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Some(cert.public_key().raw.to_vec()),
        _ => None,
    }
}

fn parse_certificate<'a>(
    der: &'a CertificateDer<'_>,
) -> Result<X509Certificate<'a>, rustls::Error> {
    match X509Certificate::from_der(der.as_ref()) {
        Ok((_, cert)) => Ok(cert),
        Err(_) => Err(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        )),
    }
}

/// Whether the crypto provider can verify handshake signatures made with this key; if not, why.
fn usable_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(), String> {
    let algorithm = der::spki_algorithm(spki.raw)
        .ok_or_else(|| "its public key info is malformed".to_string())?;
    let provider = crypto_provider();
    let supported = provider
        .signature_verification_algorithms
        .all
        .iter()
        .any(|alg| alg.public_key_alg_id().as_ref() == algorithm);
    if !supported {
        return Err(format!(
            "it is a {} key (parameters {}), which the balancer cannot verify TLS handshakes \
             with; use RSA, ECDSA P-256, P-384 or P-521, or Ed25519",
            oid_name(&spki.algorithm.algorithm),
            spki.algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid_name(&oid))
                .unwrap_or_else(|| "none".to_string())
        ));
    }
    if algorithm == alg_id::RSA_ENCRYPTION.as_ref() {
        let bits = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa_bits(rsa.modulus),
            _ => return Err("its RSA public key is malformed".to_string()),
        };
        if !RSA_BITS.contains(&bits) {
            return Err(format!(
                "it is a {bits}-bit RSA key; the balancer verifies RSA keys of {} to {} bits",
                RSA_BITS.start(),
                RSA_BITS.end()
            ));
        }
    }
    Ok(())
}
