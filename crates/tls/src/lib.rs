//! fulcrum's TLS: importing uploaded certificates the way IAM checks them, choosing a certificate
//! by SNI, building the rustls server configurations that listeners terminate TLS with, and the
//! client configurations that the balancer connects to instances with (`backend`).
//!
//! Everything uses one crypto provider (aws-lc-rs) so that keys loaded at import time are the
//! keys the handshake signs with.
#![forbid(unsafe_code)]

mod backend;
mod ciphers;
mod der;
mod error;
mod import;
mod negotiation;
mod pem;
mod resolver;
mod self_signed;
mod server;
mod sni;

use std::sync::{Arc, OnceLock};

pub use backend::{
    backend_client_config, certificate_public_key, check_client_certificate, parse_public_key,
    BackendTlsSettings, InstanceCertVerifier, InstanceCertificateError,
};
pub use ciphers::{cipher_suite_by_name, cipher_suite_name};
pub use error::TlsError;
pub use import::{
    import_certificate, import_stored, summarize_certificate, CertificateSummary,
    ImportedCertificate,
};
pub use negotiation::{
    predefined_policy, settings_from_policy, PredefinedPolicy, PREDEFINED_POLICIES,
    PROTOCOL_ATTRIBUTES,
};
pub use resolver::SwappableResolver;
pub use self_signed::self_signed;
pub use server::{server_config, ServerTlsSettings, SessionResumption};
pub use sni::SniTable;

/// Re-exported so that callers name the same rustls this crate builds against.
pub use rustls;

/// The crypto provider everyone uses: aws-lc-rs with rustls's default suites and groups.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    // Built once: every config and every import shares the same provider instead of rebuilding
    // its tables per listener.
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}
