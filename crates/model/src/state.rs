//! The whole configuration as one value, and every change to it.
//!
//! A change is a method on [`State`] that either applies completely or returns an error and leaves
//! the state untouched: each method checks everything before it mutates. The store runs these on a
//! copy and persists the copy only on success, so a refused change can never be half-applied.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::certificate::{ServerCertificate, Tag};
use crate::error::{validation, ModelError};
use crate::health::HealthCheck;
use crate::listener::Listener;
use crate::names::{check_policy_name, InstanceId, LbName};
use crate::policy::{Attributes, Policy, PolicyKind};

/// Quotas, as `DescribeAccountLimits` reports them.
pub const MAX_LOAD_BALANCERS: usize = 2_000;
pub const MAX_LISTENERS_PER_LB: usize = 100;
pub const MAX_POLICIES_PER_LB: usize = 100;
pub const MAX_CERTIFICATES_PER_LISTENER: usize = 100;
/// The predefined SSL negotiation policy ELB gives an HTTPS or SSL listener created without one.
pub const DEFAULT_NEGOTIATION_POLICY: &str = "ELBSecurityPolicy-2016-08";

/// A load balancer: its listeners, health check, instances, policies and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub name: LbName,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// Sorted by port; at most one per port.
    pub listeners: Vec<Listener>,
    pub health_check: HealthCheck,
    /// In registration order, without duplicates.
    pub instances: Vec<InstanceId>,
    pub policies: Vec<Policy>,
    pub attributes: Attributes,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Where AWS would place the load balancer; recorded and echoed so that clients work.
    #[serde(default)]
    pub placement: Placement,
    /// Policies applied to connections to instances, by instance port.
    #[serde(default)]
    pub backend_policies: BTreeMap<u16, Vec<String>>,
}

/// The AWS placement of a load balancer: availability zones, subnets, security groups and
/// scheme. A self-hosted node reaches every instance the same way, so fulcrum records these
/// and echoes them back without acting on them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub availability_zones: Vec<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `internet-facing` (the default) or `internal`.
    pub scheme: Option<String>,
}

/// Tags per load balancer, as ELB allows.
pub const MAX_TAGS_PER_LB: usize = 10;
/// Tags per server certificate, as IAM allows.
pub const MAX_TAGS_PER_CERTIFICATE: usize = 50;

/// `current` with `new` added or replacing by key, sorted by key, after checking each new tag (key 1–128
/// characters, value at most 256) and the resulting count against `limit`.
fn merge_tags(
    current: &[Tag],
    new: &[Tag],
    limit: usize,
    what: &'static str,
) -> Result<Vec<Tag>, ModelError> {
    if let Some(t) = new
        .iter()
        .find(|t| t.key.is_empty() || t.key.chars().count() > 128 || t.value.chars().count() > 256)
    {
        return Err(validation(format!(
            "tag '{}' is invalid: keys have 1 to 128 characters, values at most 256",
            t.key
        )));
    }
    let mut merged = current.to_vec();
    for t in new {
        match merged.iter_mut().find(|m| m.key == t.key) {
            Some(m) => m.value = t.value.clone(),
            None => merged.push(t.clone()),
        }
    }
    if merged.len() > limit {
        return Err(ModelError::TooMany { what, limit });
    }
    // Kept by key: every listing shows them in one order, and list markers can name a key.
    merged.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(merged)
}

impl LoadBalancer {
    pub fn listener(&self, port: u16) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.port == port)
    }

    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// The stickiness policy in force on a listener, if any.
    pub fn stickiness(&self, listener: &Listener) -> Option<&PolicyKind> {
        listener
            .policy_names
            .iter()
            .filter_map(|n| self.policy(n))
            .map(|p| &p.kind)
            .find(|k| k.is_stickiness())
    }
}

/// Where an instance of the inventory lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryEntry {
    pub address: IpAddr,
}

/// The whole configuration of a fulcrum node or fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub load_balancers: BTreeMap<LbName, LoadBalancer>,
    /// Keyed by certificate id.
    pub certificates: BTreeMap<String, ServerCertificate>,
    pub inventory: BTreeMap<InstanceId, InventoryEntry>,
}

/// A state with the revision the store gave it. Revisions only grow.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub revision: u64,
    pub state: State,
}

impl State {
    pub fn load_balancer(&self, name: &str) -> Result<&LoadBalancer, ModelError> {
        LbName::parse(name)
            .ok()
            .and_then(|n| self.load_balancers.get(&n))
            .ok_or_else(|| ModelError::LoadBalancerNotFound(name.to_owned()))
    }

    fn load_balancer_mut(&mut self, name: &str) -> Result<&mut LoadBalancer, ModelError> {
        LbName::parse(name)
            .ok()
            .and_then(|n| self.load_balancers.get_mut(&n))
            .ok_or_else(|| ModelError::LoadBalancerNotFound(name.to_owned()))
    }

    /// The address traffic for `id` goes to, if the instance is known.
    pub fn instance_address(&self, id: &InstanceId) -> Option<IpAddr> {
        id.literal_address()
            .or_else(|| self.inventory.get(id).map(|e| e.address))
    }

    pub fn certificate_by_name(&self, name: &str) -> Option<&ServerCertificate> {
        self.certificates.values().find(|c| c.name == name)
    }

    /// Creates a load balancer, or accepts an identical re-creation as ELB does.
    pub fn create_load_balancer(
        &mut self,
        name: &str,
        listeners: Vec<Listener>,
        created_at: u64,
    ) -> Result<(), ModelError> {
        let name = LbName::parse(name)?;
        if listeners.is_empty() {
            return Err(validation("a load balancer needs at least one listener"));
        }
        if let Some(existing) = self.load_balancers.get(&name) {
            let same = existing.listeners.len() == listeners.len()
                && listeners
                    .iter()
                    .all(|l| existing.listener(l.port).is_some_and(|e| e.same_as(l)));
            return if same {
                Ok(())
            } else {
                Err(ModelError::DuplicateLoadBalancerName(name.to_string()))
            };
        }
        if self.load_balancers.len() >= MAX_LOAD_BALANCERS {
            return Err(ModelError::TooMany {
                what: "load balancers",
                limit: MAX_LOAD_BALANCERS,
            });
        }
        let mut lb = LoadBalancer {
            health_check: HealthCheck::default_for_port(listeners[0].instance_port),
            name: name.clone(),
            created_at,
            listeners: Vec::new(),
            instances: Vec::new(),
            policies: Vec::new(),
            attributes: Attributes::default(),
            tags: Vec::new(),
            placement: Placement::default(),
            backend_policies: BTreeMap::new(),
        };
        self.add_listeners(&mut lb, listeners)?;
        self.load_balancers.insert(name, lb);
        Ok(())
    }

    /// Deletes a load balancer; deleting one that does not exist succeeds, as in ELB.
    pub fn delete_load_balancer(&mut self, name: &str) -> Result<(), ModelError> {
        if let Ok(name) = LbName::parse(name) {
            self.load_balancers.remove(&name);
        }
        Ok(())
    }

    pub fn create_listeners(
        &mut self,
        name: &str,
        listeners: Vec<Listener>,
    ) -> Result<(), ModelError> {
        let mut lb = self.load_balancer(name)?.clone();
        self.add_listeners(&mut lb, listeners)?;
        self.load_balancers.insert(lb.name.clone(), lb);
        Ok(())
    }

    /// Adds listeners to `lb` (not yet in `self`), checking them against each other, the
    /// certificates, and the ports other load balancers already use.
    fn add_listeners(
        &self,
        lb: &mut LoadBalancer,
        listeners: Vec<Listener>,
    ) -> Result<(), ModelError> {
        for mut l in listeners {
            l.validate()?;
            Self::give_default_negotiation(lb, &mut l);
            if l.certificates.len() > MAX_CERTIFICATES_PER_LISTENER {
                return Err(ModelError::TooMany {
                    what: "certificates on a listener",
                    limit: MAX_CERTIFICATES_PER_LISTENER,
                });
            }
            for cert in &l.certificates {
                if !self.certificates.contains_key(cert) {
                    return Err(ModelError::CertificateNotFound(cert.clone()));
                }
            }
            for p in &l.policy_names {
                if lb.policy(p).is_none() {
                    return Err(ModelError::PolicyNotFound(p.clone(), lb.name.to_string()));
                }
            }
            if let Some(other) = self
                .load_balancers
                .values()
                .find(|o| o.name != lb.name && o.listener(l.port).is_some())
            {
                return Err(ModelError::InvalidConfiguration(format!(
                    "LoadBalancerPort {} is already used by load balancer '{}' on this node's \
                     listen address",
                    l.port, other.name
                )));
            }
            match lb.listener(l.port) {
                Some(existing) if existing.same_as(&l) => continue,
                Some(_) => {
                    return Err(ModelError::DuplicateListener {
                        lb: lb.name.to_string(),
                        port: l.port,
                    })
                }
                None => {}
            }
            if lb.listeners.len() >= MAX_LISTENERS_PER_LB {
                return Err(ModelError::TooMany {
                    what: "listeners",
                    limit: MAX_LISTENERS_PER_LB,
                });
            }
            lb.listeners.push(l);
            lb.listeners.sort_by_key(|l| l.port);
        }
        Ok(())
    }

    /// What ELB does for an HTTPS or SSL listener created without an SSL negotiation policy: the
    /// load balancer gets a policy named after ELB's default predefined one, which references it,
    /// and the listener uses it. Describe calls then show the policy in force, and the data plane
    /// maps it onto rustls as any other policy.
    fn give_default_negotiation(lb: &mut LoadBalancer, l: &mut Listener) {
        let is_negotiation = |p: &Policy| p.kind.type_name() == "SSLNegotiationPolicyType";
        if !l.protocol.is_tls()
            || l.policy_names
                .iter()
                .filter_map(|n| lb.policy(n))
                .any(is_negotiation)
        {
            return;
        }
        match lb.policy(DEFAULT_NEGOTIATION_POLICY) {
            Some(p) if !is_negotiation(p) => return,
            Some(_) => {}
            None if lb.policies.len() >= MAX_POLICIES_PER_LB => return,
            None => lb.policies.push(Policy {
                name: DEFAULT_NEGOTIATION_POLICY.to_owned(),
                kind: PolicyKind::Other {
                    type_name: "SSLNegotiationPolicyType".to_owned(),
                    attributes: vec![(
                        "Reference-Security-Policy".to_owned(),
                        DEFAULT_NEGOTIATION_POLICY.to_owned(),
                    )],
                },
            }),
        }
        l.policy_names.push(DEFAULT_NEGOTIATION_POLICY.to_owned());
    }

    /// Removes the listeners on `ports`; ports without a listener are ignored, as in ELB.
    pub fn delete_listeners(&mut self, name: &str, ports: &[u16]) -> Result<(), ModelError> {
        let lb = self.load_balancer_mut(name)?;
        lb.listeners.retain(|l| !ports.contains(&l.port));
        Ok(())
    }

    pub fn configure_health_check(
        &mut self,
        name: &str,
        check: HealthCheck,
    ) -> Result<(), ModelError> {
        check.validate()?;
        self.load_balancer_mut(name)?.health_check = check;
        Ok(())
    }

    /// Registers instances; registering one twice is a no-op.
    pub fn register_instances(&mut self, name: &str, ids: &[InstanceId]) -> Result<(), ModelError> {
        if let Some(unknown) = ids.iter().find(|id| self.instance_address(id).is_none()) {
            return Err(ModelError::InvalidInstance(format!(
                "'{unknown}' is not an IP address and not in the instance inventory"
            )));
        }
        let lb = self.load_balancer_mut(name)?;
        for id in ids {
            if !lb.instances.contains(id) {
                lb.instances.push(id.clone());
            }
        }
        Ok(())
    }

    /// Deregisters instances; each must be registered.
    pub fn deregister_instances(
        &mut self,
        name: &str,
        ids: &[InstanceId],
    ) -> Result<(), ModelError> {
        let lb = self.load_balancer_mut(name)?;
        if let Some(missing) = ids.iter().find(|id| !lb.instances.contains(id)) {
            return Err(ModelError::InvalidInstance(format!(
                "'{missing}' is not registered with load balancer '{}'",
                lb.name
            )));
        }
        lb.instances.retain(|i| !ids.contains(i));
        Ok(())
    }

    /// Adds an uploaded (already checked) certificate under a name no other certificate has.
    pub fn add_certificate(&mut self, mut cert: ServerCertificate) -> Result<(), ModelError> {
        crate::names::check_certificate_name(&cert.name)?;
        crate::names::check_iam_path(&cert.path)?;
        if self.certificate_by_name(&cert.name).is_some() {
            return Err(ModelError::CertificateAlreadyExists(cert.name));
        }
        if cert.private_key.is_empty() {
            return Err(validation("a server certificate needs its private key"));
        }
        cert.tags = merge_tags(
            &[],
            &cert.tags,
            MAX_TAGS_PER_CERTIFICATE,
            "certificate tags",
        )?;
        self.certificates.insert(cert.id.clone(), cert);
        Ok(())
    }

    /// Deletes a certificate by name, unless a listener still uses it.
    pub fn delete_certificate(&mut self, name: &str) -> Result<(), ModelError> {
        let cert = self
            .certificate_by_name(name)
            .ok_or_else(|| ModelError::CertificateNotFound(name.to_owned()))?;
        // Every listener that serves it, as `lb:port`, so that the operator knows what to change.
        let listeners: Vec<String> = self
            .load_balancers
            .values()
            .flat_map(|lb| {
                lb.listeners
                    .iter()
                    .filter(|l| l.certificates.contains(&cert.id))
                    .map(move |l| format!("{}:{}", lb.name, l.port))
            })
            .collect();
        let policies = self.client_certificate_users(name);
        let users: Vec<String> = listeners.into_iter().chain(policies).collect();
        if !users.is_empty() {
            return Err(ModelError::CertificateInUse(
                name.to_owned(),
                users.join(", "),
            ));
        }
        let id = cert.id.clone();
        self.certificates.remove(&id);
        Ok(())
    }

    /// Replaces the default certificate of a TLS listener (rotation).
    pub fn set_listener_certificate(
        &mut self,
        name: &str,
        port: u16,
        cert_id: &str,
    ) -> Result<(), ModelError> {
        if !self.certificates.contains_key(cert_id) {
            return Err(ModelError::CertificateNotFound(cert_id.to_owned()));
        }
        let lb = self.load_balancer_mut(name)?;
        let lb_name = lb.name.to_string();
        let listener = lb
            .listeners
            .iter_mut()
            .find(|l| l.port == port)
            .ok_or(ModelError::ListenerNotFound { lb: lb_name, port })?;
        if !listener.protocol.is_tls() {
            return Err(ModelError::InvalidConfiguration(format!(
                "listener {port} is {}: only HTTPS and SSL listeners take a certificate",
                listener.protocol
            )));
        }
        listener.certificates.retain(|c| c != cert_id);
        if listener.certificates.is_empty() {
            listener.certificates.push(cert_id.to_owned());
        } else {
            listener.certificates[0] = cert_id.to_owned();
        }
        Ok(())
    }

    /// The HTTPS or SSL listener of `name` on `port`: the one listener certificates go on.
    pub fn tls_listener(&self, name: &str, port: u16) -> Result<&Listener, ModelError> {
        let lb = self.load_balancer(name)?;
        let listener = lb
            .listener(port)
            .ok_or_else(|| ModelError::ListenerNotFound {
                lb: lb.name.to_string(),
                port,
            })?;
        if !listener.protocol.is_tls() {
            return Err(ModelError::InvalidConfiguration(format!(
                "listener {port} is {}: only HTTPS and SSL listeners take certificates",
                listener.protocol
            )));
        }
        Ok(listener)
    }

    fn tls_listener_mut(&mut self, name: &str, port: u16) -> Result<&mut Listener, ModelError> {
        self.tls_listener(name, port)?;
        let lb = self.load_balancer_mut(name)?;
        Ok(lb
            .listeners
            .iter_mut()
            .find(|l| l.port == port)
            .expect("found above"))
    }

    /// The certificates a listener-certificate change names: at least one, each uploaded.
    fn check_certificate_ids(&self, cert_ids: &[String]) -> Result<(), ModelError> {
        if cert_ids.is_empty() {
            return Err(validation(
                "Certificates must name at least one certificate",
            ));
        }
        match cert_ids
            .iter()
            .find(|id| !self.certificates.contains_key(id.as_str()))
        {
            Some(unknown) => Err(ModelError::CertificateNotFound(unknown.clone())),
            None => Ok(()),
        }
    }

    /// Adds certificates (by id) to a TLS listener's list, after those it has, for clients
    /// whose SNI names them; one already in the list stays where it is (adding is idempotent).
    pub fn add_listener_certificates(
        &mut self,
        name: &str,
        port: u16,
        cert_ids: &[String],
    ) -> Result<(), ModelError> {
        let listener = self.tls_listener(name, port)?;
        self.check_certificate_ids(cert_ids)?;
        let mut certificates = listener.certificates.clone();
        for id in cert_ids {
            if !certificates.contains(id) {
                certificates.push(id.clone());
            }
        }
        if certificates.len() > MAX_CERTIFICATES_PER_LISTENER {
            return Err(ModelError::TooMany {
                what: "certificates on a listener",
                limit: MAX_CERTIFICATES_PER_LISTENER,
            });
        }
        self.tls_listener_mut(name, port)?.certificates = certificates;
        Ok(())
    }

    /// Removes certificates (by id) from a TLS listener's list; one not in the list is ignored.
    /// The default certificate (the first) is never removed: it is replaced with
    /// [`State::set_listener_certificate`].
    pub fn remove_listener_certificates(
        &mut self,
        name: &str,
        port: u16,
        cert_ids: &[String],
    ) -> Result<(), ModelError> {
        let listener = self.tls_listener(name, port)?;
        self.check_certificate_ids(cert_ids)?;
        if let Some(default) = listener
            .certificates
            .first()
            .filter(|d| cert_ids.contains(d))
        {
            let cert = &self.certificates[default.as_str()].name;
            return Err(ModelError::InvalidConfiguration(format!(
                "certificate {cert} is the default certificate of listener {port} and cannot be \
                 removed; replace it with SetLoadBalancerListenerSSLCertificate"
            )));
        }
        self.tls_listener_mut(name, port)?
            .certificates
            .retain(|c| !cert_ids.contains(c));
        Ok(())
    }

    pub fn create_policy(&mut self, name: &str, policy: Policy) -> Result<(), ModelError> {
        check_policy_name(&policy.name)?;
        policy.kind.validate()?;
        let lb = self.load_balancer_mut(name)?;
        if lb.policy(&policy.name).is_some() {
            return Err(ModelError::DuplicatePolicyName(
                policy.name,
                lb.name.to_string(),
            ));
        }
        if lb.policies.len() >= MAX_POLICIES_PER_LB {
            return Err(ModelError::TooMany {
                what: "policies",
                limit: MAX_POLICIES_PER_LB,
            });
        }
        lb.policies.push(policy);
        Ok(())
    }

    /// Deletes a policy that no listener uses.
    pub fn delete_policy(&mut self, name: &str, policy: &str) -> Result<(), ModelError> {
        let lb = self.load_balancer_mut(name)?;
        if lb.policy(policy).is_none() {
            return Err(ModelError::PolicyNotFound(
                policy.to_owned(),
                lb.name.to_string(),
            ));
        }
        if let Some(l) = lb
            .listeners
            .iter()
            .find(|l| l.policy_names.iter().any(|p| p == policy))
        {
            return Err(ModelError::InvalidConfiguration(format!(
                "policy {policy} is in use by the listener on port {}",
                l.port
            )));
        }
        if let Some((port, _)) = lb
            .backend_policies
            .iter()
            .find(|(_, names)| names.iter().any(|p| p == policy))
        {
            return Err(ModelError::InvalidConfiguration(format!(
                "policy {policy} is in use for instance port {port}"
            )));
        }
        lb.policies.retain(|p| p.name != policy);
        Ok(())
    }

    /// Replaces the set of policies of a listener; an empty list removes them all.
    pub fn set_listener_policies(
        &mut self,
        name: &str,
        port: u16,
        policies: Vec<String>,
    ) -> Result<(), ModelError> {
        let lb = self.load_balancer_mut(name)?;
        let lb_name = lb.name.to_string();
        for p in &policies {
            if lb.policy(p).is_none() {
                return Err(ModelError::PolicyNotFound(p.clone(), lb_name));
            }
        }
        let sticky = policies
            .iter()
            .filter(|p| lb.policy(p).is_some_and(|p| p.kind.is_stickiness()))
            .count();
        let listener = lb
            .listeners
            .iter()
            .find(|l| l.port == port)
            .ok_or_else(|| ModelError::ListenerNotFound {
                lb: lb_name.clone(),
                port,
            })?;
        if sticky > 0 && !listener.protocol.is_http() {
            return Err(ModelError::InvalidConfiguration(format!(
                "stickiness policies apply to HTTP and HTTPS listeners only, not {} (port {port})",
                listener.protocol
            )));
        }
        if sticky > 1 {
            return Err(ModelError::InvalidConfiguration(
                "a listener takes at most one stickiness policy".into(),
            ));
        }
        let listener = lb
            .listeners
            .iter_mut()
            .find(|l| l.port == port)
            .expect("found above");
        listener.policy_names = policies;
        Ok(())
    }

    pub fn set_attributes(&mut self, name: &str, attributes: Attributes) -> Result<(), ModelError> {
        attributes.validate()?;
        self.load_balancer_mut(name)?.attributes = attributes;
        Ok(())
    }

    /// Adds or moves an instance of the inventory.
    pub fn put_inventory(&mut self, id: InstanceId, address: IpAddr) -> Result<(), ModelError> {
        if id.literal_address().is_some() {
            return Err(ModelError::InvalidInstance(format!(
                "'{id}' is an address; inventory ids name an instance, addresses need no entry"
            )));
        }
        self.inventory.insert(id, InventoryEntry { address });
        Ok(())
    }

    /// Removes an instance from the inventory, unless a load balancer still has it registered.
    pub fn remove_inventory(&mut self, id: &InstanceId) -> Result<(), ModelError> {
        if let Some(lb) = self
            .load_balancers
            .values()
            .find(|lb| lb.instances.contains(id))
        {
            return Err(ModelError::InvalidConfiguration(format!(
                "instance '{id}' is registered with load balancer '{}'; deregister it first",
                lb.name
            )));
        }
        if self.inventory.remove(id).is_none() {
            return Err(ModelError::InvalidInstance(format!(
                "'{id}' is not in the inventory"
            )));
        }
        Ok(())
    }

    /// Replaces the recorded placement of a load balancer.
    pub fn set_placement(&mut self, name: &str, placement: Placement) -> Result<(), ModelError> {
        if let Some(scheme) = &placement.scheme {
            if scheme != "internet-facing" && scheme != "internal" {
                return Err(validation(format!(
                    "Scheme '{scheme}' is invalid: internet-facing or internal"
                )));
            }
        }
        self.load_balancer_mut(name)?.placement = placement;
        Ok(())
    }

    /// Adds or replaces tags (by key) on a load balancer.
    pub fn add_tags(&mut self, name: &str, tags: &[Tag]) -> Result<(), ModelError> {
        if let Some(t) = tags.iter().find(|t| t.key.starts_with("aws:")) {
            return Err(validation(format!(
                "tag key '{}' is invalid: keys starting with 'aws:' are reserved",
                t.key
            )));
        }
        let lb = self.load_balancer_mut(name)?;
        lb.tags = merge_tags(&lb.tags, tags, MAX_TAGS_PER_LB, "tags")?;
        Ok(())
    }

    pub fn remove_tags(&mut self, name: &str, keys: &[String]) -> Result<(), ModelError> {
        let lb = self.load_balancer_mut(name)?;
        lb.tags.retain(|t| !keys.contains(&t.key));
        Ok(())
    }

    /// Replaces the policies applied to connections to instances on `instance_port`.
    pub fn set_backend_policies(
        &mut self,
        name: &str,
        instance_port: u16,
        policies: Vec<String>,
    ) -> Result<(), ModelError> {
        if instance_port == 0 {
            return Err(validation("InstancePort must be between 1 and 65535"));
        }
        let lb = self.load_balancer_mut(name)?;
        if let Some(p) = policies.iter().find(|p| lb.policy(p).is_none()) {
            return Err(ModelError::PolicyNotFound(p.clone(), lb.name.to_string()));
        }
        if policies.is_empty() {
            lb.backend_policies.remove(&instance_port);
        } else {
            lb.backend_policies.insert(instance_port, policies);
        }
        Ok(())
    }

    /// Renames or moves a certificate (IAM `UpdateServerCertificate`). Listeners refer to the
    /// certificate by id, so they follow.
    pub fn update_certificate(
        &mut self,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<(), ModelError> {
        let id = self
            .certificate_by_name(name)
            .ok_or_else(|| ModelError::CertificateNotFound(name.to_owned()))?
            .id
            .clone();
        if let Some(n) = new_name {
            crate::names::check_certificate_name(n)?;
            if n != name && self.certificate_by_name(n).is_some() {
                return Err(ModelError::CertificateAlreadyExists(n.to_owned()));
            }
        }
        if let Some(p) = new_path {
            crate::names::check_iam_path(p)?;
        }
        let cert = self.certificates.get_mut(&id).expect("found above");
        if let Some(n) = new_name {
            cert.name = n.to_owned();
        }
        if let Some(p) = new_path {
            cert.path = p.to_owned();
        }
        if let Some(n) = new_name {
            // Client-certificate policies name their certificate: they follow the rename.
            for lb in self.load_balancers.values_mut() {
                for p in &mut lb.policies {
                    if let crate::PolicyKind::Other {
                        type_name,
                        attributes,
                    } = &mut p.kind
                    {
                        if type_name == "BackendClientCertificatePolicyType" {
                            for (k, v) in attributes.iter_mut() {
                                if k == "ServerCertificateName" && v == name {
                                    *v = n.to_owned();
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The client-certificate policies that name certificate `name` (`lb policy NAME`).
    fn client_certificate_users(&self, name: &str) -> Vec<String> {
        self.load_balancers
            .values()
            .flat_map(|lb| {
                lb.policies
                    .iter()
                    .filter(|p| names_client_certificate(&p.kind, name))
                    .map(move |p| format!("{} policy {}", lb.name, p.name))
            })
            .collect()
    }

    /// Adds or replaces tags on a certificate.
    pub fn tag_certificate(&mut self, name: &str, tags: &[Tag]) -> Result<(), ModelError> {
        let id = self
            .certificate_by_name(name)
            .ok_or_else(|| ModelError::CertificateNotFound(name.to_owned()))?
            .id
            .clone();
        let cert = self.certificates.get_mut(&id).expect("found above");
        cert.tags = merge_tags(
            &cert.tags,
            tags,
            MAX_TAGS_PER_CERTIFICATE,
            "certificate tags",
        )?;
        Ok(())
    }

    pub fn untag_certificate(&mut self, name: &str, keys: &[String]) -> Result<(), ModelError> {
        let id = self
            .certificate_by_name(name)
            .ok_or_else(|| ModelError::CertificateNotFound(name.to_owned()))?
            .id
            .clone();
        let cert = self.certificates.get_mut(&id).expect("found above");
        cert.tags.retain(|t| !keys.contains(&t.key));
        Ok(())
    }
}

/// Whether a policy is a client-certificate policy naming certificate `name`.
fn names_client_certificate(kind: &crate::PolicyKind, name: &str) -> bool {
    match kind {
        crate::PolicyKind::Other {
            type_name,
            attributes,
        } => {
            type_name == "BackendClientCertificatePolicyType"
                && attributes
                    .iter()
                    .any(|(k, v)| k == "ServerCertificateName" && v == name)
        }
        _ => false,
    }
}
