//! fulcrum's configuration model: plain data for load balancers, listeners, instances, health
//! checks, policies and certificates, with ELB's validation rules. No I/O.

#![forbid(unsafe_code)]

mod certificate;
mod error;
mod health;
mod listener;
mod names;
mod policy;
mod state;

pub use certificate::{PrivateKeyPem, ServerCertificate, Tag};
pub use error::ModelError;
pub use health::{HealthCheck, HealthTarget};
pub use listener::{Listener, Protocol};
pub use names::{check_certificate_name, check_iam_path, check_policy_name, InstanceId, LbName};
pub use policy::{AccessLog, Attributes, Balancing, Policy, PolicyKind};
pub use state::{
    InventoryEntry, LoadBalancer, Placement, Snapshot, State, MAX_CERTIFICATES_PER_LISTENER,
    MAX_LISTENERS_PER_LB, MAX_LOAD_BALANCERS, MAX_POLICIES_PER_LB, MAX_TAGS_PER_LB,
};

#[cfg(test)]
mod tests;
