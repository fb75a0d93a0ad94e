//! What can go wrong, worded for the operator who uploaded the PEM: each message says which input
//! and which part of it is at fault.

/// An error from importing a certificate or building a TLS configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate body is not exactly one well-formed X.509 certificate.
    #[error("{0}")]
    MalformedCertificate(String),
    /// The private key is not one well-formed, unencrypted private key.
    #[error("{0}")]
    MalformedKey(String),
    /// The private key is well formed but belongs to another certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyPairMismatch,
    /// The chain is malformed or does not lead from the body towards a root.
    #[error("{0}")]
    MalformedChain(String),
    /// The certificate's key is of a kind or size that the balancer refuses to serve.
    #[error("{0}")]
    UnsupportedKey(String),
    /// The TLS settings leave nothing to negotiate, or rustls refused them.
    #[error("{0}")]
    Config(String),
    /// rustls or the system could not provide something it should always provide (randomness,
    /// key generation).
    #[error("{0}")]
    Internal(String),
}

impl TlsError {
    /// The IAM error code for this error. IAM reports bad keys and chains as
    /// `MalformedCertificate` too, so the API stays compatible with what clients expect.
    pub fn code(&self) -> &'static str {
        match self {
            TlsError::MalformedCertificate(_)
            | TlsError::MalformedKey(_)
            | TlsError::MalformedChain(_)
            | TlsError::UnsupportedKey(_) => "MalformedCertificate",
            TlsError::KeyPairMismatch => "KeyPairMismatch",
            TlsError::Config(_) => "InvalidConfigurationRequest",
            TlsError::Internal(_) => "ServiceFailure",
        }
    }
}
