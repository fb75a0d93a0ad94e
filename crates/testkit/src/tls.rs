//! rustls configurations for test clients and test servers (aws-lc-rs provider, explicitly).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The aws-lc-rs crypto provider, as an `Arc` for the `*_with_provider` builders.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Parses every certificate in a PEM string (panics on malformed PEM).
pub fn certs_from_pem(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("parse certificate PEM")
}

/// Parses the first private key in a PEM string (PKCS#8, PKCS#1 or SEC1; panics if none).
pub fn key_from_pem(pem: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).expect("parse private key PEM")
}

/// A root store holding the certificates of `ca_pem`.
pub fn root_store(ca_pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(ca_pem) {
        roots.add(cert).expect("add CA certificate to root store");
    }
    roots
}

fn alpn_vec(alpn: &[&[u8]]) -> Vec<Vec<u8>> {
    alpn.iter().map(|p| p.to_vec()).collect()
}

/// A rustls ClientConfig trusting only `ca_pem`, with the given ALPN protocols (e.g. [b"h2"] or [b"http/1.1"]),
/// session resumption enabled (default in rustls).
pub fn client_tls_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(root_store(ca_pem))
        .with_no_client_auth();
    config.alpn_protocols = alpn_vec(alpn);
    Arc::new(config)
}

/// Like [`client_tls_config`], restricted to the given TLS versions (e.g. `&[&rustls::version::TLS12]`).
pub fn client_tls_config_versions(
    ca_pem: &str,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(root_store(ca_pem))
        .with_no_client_auth();
    config.alpn_protocols = alpn_vec(alpn);
    Arc::new(config)
}

/// Like [`client_tls_config`], presenting a client certificate (for mTLS): `cert_pem` may hold a chain.
pub fn client_tls_config_with_cert(
    ca_pem: &str,
    alpn: &[&[u8]],
    cert_pem: &str,
    key_pem: &str,
) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(root_store(ca_pem))
        .with_client_auth_cert(certs_from_pem(cert_pem), key_from_pem(key_pem))
        .expect("client certificate");
    config.alpn_protocols = alpn_vec(alpn);
    Arc::new(config)
}

/// A rustls ServerConfig serving `cert_pem` (may hold a chain) with `key_pem`, advertising `alpn`.
pub fn server_tls_config(cert_pem: &str, key_pem: &str, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs_from_pem(cert_pem), key_from_pem(key_pem))
        .expect("server certificate");
    config.alpn_protocols = alpn_vec(alpn);
    Arc::new(config)
}

/// Like [`server_tls_config`], but requiring a client certificate issued by `client_ca_pem` (mTLS).
pub fn server_tls_config_mtls(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: &str,
    alpn: &[&[u8]],
) -> Arc<ServerConfig> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(root_store(client_ca_pem)),
        provider(),
    )
    .build()
    .expect("client verifier");
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs_from_pem(cert_pem), key_from_pem(key_pem))
        .expect("server certificate");
    config.alpn_protocols = alpn_vec(alpn);
    Arc::new(config)
}
