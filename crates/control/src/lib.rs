//! fulcrum's service layer: every action's rules — the defaults it fills in, what it checks,
//! what a change creates and in which one atomic update of the store — over typed requests,
//! returning typed results and one error type ([`ControlError`]: AWS's codes and words). The
//! AWS Query API (`fulcrum-api`) and the web console are thin adapters over it: they parse
//! their wire format into these requests and render the results, and nothing else. Who may
//! change what ([`access`]) is decided here too, for both.

#![forbid(unsafe_code)]

pub mod access;
mod certificates;
mod error;
pub mod fleet;
mod instances;
mod launch;
mod load_balancers;
mod logs;
mod pause;
mod policies;
pub mod policy_types;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fulcrum_model::{ServerCertificate, Snapshot, State};
use fulcrum_proxy::DataPlane;
use fulcrum_store::Store;
use fulcrum_telemetry::access_log::Tails;
use fulcrum_telemetry::series::Series;

pub use access::Caller;
pub use certificates::{
    certificate_uses, find_certificate, prepare_certificate, CertificateChange, CertificateUpload,
    CertificateUse, UploadError,
};
pub use error::ControlError;
pub use fleet::NodeIdentity;
pub use instances::InstanceHealth;
pub use launch::Launch;
pub use load_balancers::{
    existing_lb_name, lb_name, AttributeChanges, HealthCheckSpec, ListenerSpec, NewLoadBalancer,
    PlacementChange,
};
pub use pause::Pause;
pub use policies::NewPolicy;

/// One node's control plane: the store every change goes through, and what the node sees
/// (instance health, metrics, access logs) for the reads that show it.
pub struct Control {
    pub store: Arc<Store>,
    pub data_plane: DataPlane,
    /// The region clients sign for.
    pub region: String,
    /// The 12-digit account in ARNs.
    pub account: String,
    /// What `DNSName` reports: the host clients reach the listeners at; `{name}` in it stands
    /// for the load balancer's name (`{name}.lb.example.com`).
    pub public_host: String,
    /// The one-minute metrics (CloudWatch's API, the console's charts).
    pub series: Arc<Series>,
    /// The access logs' recent lines and live tails.
    pub access_logs: Arc<Tails>,
    /// Who this node is in its fleet.
    pub node: NodeIdentity,
    /// Closed while the node hands over to a process that replaces it.
    pub pause: Pause,
}

impl Control {
    /// The state as it is now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.store.snapshot()
    }

    /// The `DNSName` of load balancer `name`.
    pub fn dns_name(&self, name: &str) -> String {
        self.public_host.replace("{name}", name)
    }

    /// `arn:aws:iam::<account>:server-certificate<path><name>`.
    pub fn certificate_arn(&self, cert: &ServerCertificate) -> String {
        certificate_arn(&self.account, cert)
    }

    /// Runs one change through the store (one atomic update, re-run on a newer state when
    /// another writer won) and returns the closure's value.
    fn update<T>(
        &self,
        change: impl FnMut(&mut State) -> Result<T, fulcrum_model::ModelError>,
    ) -> Result<T, ControlError> {
        Ok(self.store.update(change)?)
    }
}

impl Control {
    /// Like `update`, for a change whose own checks speak `ControlError` (with the field at
    /// fault): the first such error ends the change and is returned as it is.
    fn update_checked<T>(
        &self,
        mut change: impl FnMut(&mut State) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut refused = None;
        let outcome = self.store.update(|s| {
            change(s).map_err(|e| {
                let model = fulcrum_model::ModelError::InvalidConfiguration(e.message.clone());
                refused = Some(e);
                model
            })
        });
        match (outcome, refused) {
            (Ok(v), _) => Ok(v),
            (Err(_), Some(e)) => Err(e),
            (Err(e), None) => Err(e.into()),
        }
    }
}

/// `arn:aws:iam::<account>:server-certificate<path><name>`.
pub fn certificate_arn(account: &str, cert: &ServerCertificate) -> String {
    format!(
        "arn:aws:iam::{account}:server-certificate{}{}",
        cert.path, cert.name
    )
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
