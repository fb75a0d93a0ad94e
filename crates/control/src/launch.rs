//! The console's create wizard as one change: a load balancer with its listeners, the new
//! certificate the operator uploaded in the same step (or an existing one), the security
//! policy of its TLS listeners, its health check, instances and tags. Everything is checked
//! first on a copy of the state, so that an error names the field at fault, and then made in
//! one update of the store: a failed step leaves nothing half-created.

use fulcrum_model::{InstanceId, ModelError, Policy, State};

use crate::error::At;
use crate::load_balancers::{check_tags, lb_name, listeners, placement_for, HealthCheckSpec};
use crate::policy_types::policy_kind;
use crate::{prepare_certificate, CertificateUpload, Control, ControlError, NewLoadBalancer};

/// What the wizard collects.
#[derive(Default)]
pub struct Launch {
    pub load_balancer: NewLoadBalancer,
    /// A certificate uploaded in the security step; HTTPS and SSL listeners that name no
    /// certificate take it.
    pub new_certificate: Option<CertificateUpload>,
    /// A predefined policy (`ELBSecurityPolicy-*`) for the TLS listeners; `None` keeps
    /// fulcrum's default.
    pub security_policy: Option<String>,
    pub health_check: Option<HealthCheckSpec>,
    pub instances: Vec<String>,
}

/// The name of the policy the wizard makes for the security policy it was given.
const SECURITY_POLICY_NAME: &str = "fulcrum-security-policy";

impl Control {
    /// Creates what `launch` describes, all or nothing; returns the DNS name.
    pub fn launch(&self, launch: Launch) -> Result<String, ControlError> {
        let name = lb_name(&launch.load_balancer.name)?;
        let certificate = match launch.new_certificate {
            Some(upload) => {
                crate::certificates::check_new_name(&self.snapshot().state, &upload.name)?;
                Some(prepare_certificate(upload, crate::now())?)
            }
            None => None,
        };
        let security_policy = match launch.security_policy.filter(|p| !p.is_empty()) {
            Some(reference) => Some(Policy {
                name: SECURITY_POLICY_NAME.to_owned(),
                kind: policy_kind(
                    "SSLNegotiationPolicyType",
                    vec![("Reference-Security-Policy".to_owned(), reference)],
                )
                .at("SecurityPolicy")?,
            }),
            None => None,
        };
        let health_check = match launch.health_check {
            Some(spec) => Some(spec.into_check()?),
            None => None,
        };
        let instances = launch
            .instances
            .iter()
            .map(|i| InstanceId::parse(i))
            .collect::<Result<Vec<_>, _>>()
            .at("Instances")?;
        check_tags(&launch.load_balancer.tags)?;
        let req = &launch.load_balancer;
        let placement = placement_for(&self.region, req)?;
        let now = crate::now();
        let account = &self.account;
        let apply = |s: &mut State| -> Result<(), ControlError> {
            if s.load_balancers.contains_key(&name) {
                return Err(ControlError::from(ModelError::DuplicateLoadBalancerName(
                    name.to_string(),
                ))
                .at("LoadBalancerName"));
            }
            let mut specs = req.listeners.clone();
            if let Some(cert) = &certificate {
                s.add_certificate(cert.clone())
                    .at("ServerCertificateName")?;
                for spec in &mut specs {
                    let tls =
                        matches!(spec.protocol.to_ascii_uppercase().as_str(), "HTTPS" | "SSL");
                    if tls && spec.certificate.as_deref().unwrap_or("").is_empty() {
                        spec.certificate = Some(cert.id.clone());
                    }
                }
            }
            let listeners = listeners(s, account, &specs)?;
            let tls_ports: Vec<u16> = listeners
                .iter()
                .filter(|l| l.protocol.is_tls())
                .map(|l| l.port)
                .collect();
            s.create_load_balancer(name.as_str(), listeners, now)
                .map_err(|e| crate::load_balancers::create_field(e.into(), &specs))?;
            s.set_placement(name.as_str(), placement.clone())?;
            s.add_tags(name.as_str(), &req.tags).at("Tags")?;
            if let Some(check) = &health_check {
                s.configure_health_check(name.as_str(), check.clone())
                    .map_err(|e| crate::load_balancers::health_check_field(e.into()))?;
            }
            if !instances.is_empty() {
                s.register_instances(name.as_str(), &instances)
                    .at("Instances")?;
            }
            if let (Some(policy), false) = (&security_policy, tls_ports.is_empty()) {
                s.create_policy(name.as_str(), policy.clone())?;
                for port in tls_ports {
                    s.set_listener_policies(name.as_str(), port, vec![policy.name.clone()])?;
                }
            }
            Ok(())
        };
        // A trial on a copy names the field at fault; the store then runs the same change
        // (again, on a newer state, if another writer came between).
        apply(&mut self.snapshot().state.clone())?;
        self.store
            .update(|s| apply(s).map_err(|e| ModelError::InvalidConfiguration(e.message)))?;
        Ok(self.dns_name(name.as_str()))
    }
}
