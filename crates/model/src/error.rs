//! Every way a change to the configuration can be refused.
//!
//! Each variant maps to the ELB (or IAM) error code an AWS client expects, so the API turns a
//! `ModelError` into a wire error in exactly one place without guessing.

use thiserror::Error;

/// A change the model refuses. The message is written for the operator who sent the request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A parameter is malformed or out of range (ELB `ValidationError`).
    #[error("{0}")]
    Validation(String),
    /// The request is well formed but cannot be applied to this configuration.
    #[error("{0}")]
    InvalidConfiguration(String),
    #[error("There is no ACTIVE Load Balancer named '{0}'")]
    LoadBalancerNotFound(String),
    #[error(
        "Load Balancer named '{0}' already exists and it is configured with different parameters."
    )]
    DuplicateLoadBalancerName(String),
    #[error("A listener already exists for {lb} with LoadBalancerPort {port}, but with a different InstancePort, Protocol, or SSLCertificateId")]
    DuplicateListener { lb: String, port: u16 },
    #[error("There is no listener for {lb} on LoadBalancerPort {port}")]
    ListenerNotFound { lb: String, port: u16 },
    #[error("Server Certificate not found for the key: {0}")]
    CertificateNotFound(String),
    #[error("There is no policy with name {0} for load balancer {1}")]
    PolicyNotFound(String, String),
    #[error("Policy {0} already exists for load balancer {1}")]
    DuplicatePolicyName(String, String),
    #[error("The requested policy type {0} does not exist")]
    PolicyTypeNotFound(String),
    #[error("Invalid instance: {0}")]
    InvalidInstance(String),
    #[error("The certificate with name {0} already exists.")]
    CertificateAlreadyExists(String),
    #[error("Certificate: {0} is currently in use by {1}. Please remove it first.")]
    CertificateInUse(String, String),
    #[error("Exceeded the quota of {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
}

impl ModelError {
    /// The AWS error code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::Validation(_) => "ValidationError",
            ModelError::InvalidConfiguration(_) => "InvalidConfigurationRequest",
            ModelError::LoadBalancerNotFound(_) => "LoadBalancerNotFound",
            ModelError::DuplicateLoadBalancerName(_) => "DuplicateLoadBalancerName",
            ModelError::DuplicateListener { .. } => "DuplicateListener",
            ModelError::ListenerNotFound { .. } => "ListenerNotFound",
            ModelError::CertificateNotFound(_) => "CertificateNotFound",
            ModelError::PolicyNotFound(..) => "PolicyNotFound",
            ModelError::DuplicatePolicyName(..) => "DuplicatePolicyName",
            ModelError::PolicyTypeNotFound(_) => "PolicyTypeNotFound",
            ModelError::InvalidInstance(_) => "InvalidInstance",
            ModelError::CertificateAlreadyExists(_) => "EntityAlreadyExists",
            ModelError::CertificateInUse(..) => "DeleteConflict",
            ModelError::TooMany { what, .. } => match *what {
                "load balancers" => "TooManyLoadBalancers",
                "policies" => "TooManyPolicies",
                "tags" => "TooManyTags",
                _ => "LimitExceeded",
            },
        }
    }
}

pub(crate) fn validation(msg: impl Into<String>) -> ModelError {
    ModelError::Validation(msg.into())
}
