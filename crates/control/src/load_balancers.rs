//! Load balancers and what hangs off them: creation (defaults for zones, scheme, instance
//! protocol), deletion, listeners and their certificates, the health check, attributes, tags
//! and placement.

use fulcrum_model::{
    Attributes, Balancing, HealthCheck, LbName, Listener, ModelError, Placement, Protocol, State,
    Tag,
};

use crate::certificates::resolve;
use crate::error::At;
use crate::{Control, ControlError};

/// One listener as a request gives it. Field errors name it as the API does
/// (`Listeners.member.N.InstancePort`).
#[derive(Debug, Clone, Default)]
pub struct ListenerSpec {
    pub protocol: String,
    pub load_balancer_port: u32,
    /// `None`: HTTP behind HTTP and HTTPS, TCP behind TCP and SSL.
    pub instance_protocol: Option<String>,
    pub instance_port: u32,
    /// An ARN, id or name of an uploaded certificate; HTTPS and SSL listeners need one.
    pub certificate: Option<String>,
}

impl ListenerSpec {
    /// An HTTPS or SSL listener (one that needs a certificate).
    pub fn is_tls(&self) -> bool {
        self.protocol.parse::<Protocol>().is_ok_and(|p| p.is_tls())
    }
}

/// ELB `CreateLoadBalancer`.
#[derive(Debug, Clone, Default)]
pub struct NewLoadBalancer {
    pub name: String,
    pub listeners: Vec<ListenerSpec>,
    pub tags: Vec<Tag>,
    pub availability_zones: Vec<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `internet-facing` (the default) or `internal`.
    pub scheme: Option<String>,
}

/// ELB `ConfigureHealthCheck`.
#[derive(Debug, Clone)]
pub struct HealthCheckSpec {
    /// `HTTP:80/path`, `HTTPS:443/path`, `TCP:22`, `SSL:443`.
    pub target: String,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// ELB `ModifyLoadBalancerAttributes`: what the request names changes, the rest stays.
#[derive(Debug, Clone, Default)]
pub struct AttributeChanges {
    pub cross_zone: Option<bool>,
    pub draining_enabled: Option<bool>,
    pub draining_timeout_secs: Option<u32>,
    pub idle_timeout_secs: Option<u32>,
    pub access_log_enabled: Option<bool>,
    pub access_log_bucket: Option<String>,
    pub access_log_interval: Option<u32>,
    pub access_log_prefix: Option<String>,
    /// `AdditionalAttributes`: key and value.
    pub additional: Vec<(String, String)>,
}

/// The placement actions: zones, subnets, security groups (recorded and echoed: a self-hosted
/// node has none to act on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementChange {
    ApplySecurityGroups,
    AttachSubnets,
    DetachSubnets,
    EnableZones,
    DisableZones,
}

impl PlacementChange {
    /// The list the change is about, as the API names it.
    pub fn list_name(self) -> &'static str {
        match self {
            PlacementChange::ApplySecurityGroups => "SecurityGroups",
            PlacementChange::AttachSubnets | PlacementChange::DetachSubnets => "Subnets",
            PlacementChange::EnableZones | PlacementChange::DisableZones => "AvailabilityZones",
        }
    }
}

impl HealthCheckSpec {
    /// The model's health check; its target checked.
    pub(crate) fn into_check(self) -> Result<HealthCheck, ControlError> {
        Ok(HealthCheck {
            target: self.target.parse().at("HealthCheck.Target")?,
            interval_secs: self.interval_secs,
            timeout_secs: self.timeout_secs,
            healthy_threshold: self.healthy_threshold,
            unhealthy_threshold: self.unhealthy_threshold,
        })
    }
}

/// Blames a health check's error on its field: the model's messages start with it.
pub(crate) fn health_check_field(e: ControlError) -> ControlError {
    if e.code != "ValidationError" {
        return e;
    }
    let first = e.message.split_whitespace().next().unwrap_or("");
    let field = match first {
        "Interval" | "Timeout" | "HealthyThreshold" | "UnhealthyThreshold" => first,
        _ => "Target",
    };
    let field = format!("HealthCheck.{field}");
    e.at(field)
}

/// Where a new load balancer is placed: what the request names, or one zone standing for the
/// node itself (every node reaches every instance); ELB's two schemes, recorded.
pub(crate) fn placement_for(
    region: &str,
    req: &NewLoadBalancer,
) -> Result<Placement, ControlError> {
    let mut zones = req.availability_zones.clone();
    if zones.is_empty() && req.subnets.is_empty() {
        zones.push(format!("{region}a"));
    }
    let scheme = match req.scheme.as_deref() {
        None => None,
        Some(s @ ("internet-facing" | "internal")) => Some(s.to_owned()),
        Some(other) => {
            return Err(ControlError::new(
                "InvalidScheme",
                format!("Scheme '{other}' is not valid: internet-facing (the default) or internal"),
            )
            .at("Scheme"))
        }
    };
    Ok(Placement {
        availability_zones: zones,
        subnets: req.subnets.clone(),
        security_groups: req.security_groups.clone(),
        scheme,
    })
}

/// A load balancer's name, checked (`ValidationError` on `LoadBalancerName`).
pub fn lb_name(name: &str) -> Result<LbName, ControlError> {
    LbName::parse(name).at("LoadBalancerName")
}

/// A name that must be a load balancer's: an invalid one names none (`LoadBalancerNotFound`).
pub fn existing_lb_name(name: &str) -> Result<LbName, ControlError> {
    LbName::parse(name)
        .map_err(|_| ControlError::from(ModelError::LoadBalancerNotFound(name.to_owned())))
}

fn port(n: u32, field: &str) -> Result<u16, ControlError> {
    u16::try_from(n).ok().filter(|p| *p != 0).ok_or_else(|| {
        ControlError::validation(format!("{} {n} is not between 1 and 65535", leaf(field)))
            .at(field)
    })
}

fn leaf(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

/// Listeners as a request gives them, with certificate references resolved to ids.
pub(crate) fn listeners(
    state: &State,
    account: &str,
    specs: &[ListenerSpec],
) -> Result<Vec<Listener>, ControlError> {
    if specs.is_empty() {
        return Err(
            ControlError::validation("Listeners must contain at least one listener")
                .at("Listeners"),
        );
    }
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let field = |name: &str| format!("Listeners.member.{}.{name}", i + 1);
            let protocol: Protocol = spec.protocol.parse().at(&field("Protocol"))?;
            let instance_protocol =
                match spec.instance_protocol.as_deref().filter(|p| !p.is_empty()) {
                    Some(p) => p.parse().at(&field("InstanceProtocol"))?,
                    None => match protocol {
                        Protocol::Http | Protocol::Https => Protocol::Http,
                        Protocol::Tcp | Protocol::Ssl => Protocol::Tcp,
                    },
                };
            let mut listener = Listener::new(
                protocol,
                port(spec.load_balancer_port, &field("LoadBalancerPort"))?,
                instance_protocol,
                port(spec.instance_port, &field("InstancePort"))?,
            );
            if let Some(reference) = spec.certificate.as_deref().filter(|s| !s.is_empty()) {
                listener
                    .certificates
                    .push(resolve(state, account, reference).at(&field("SSLCertificateId"))?);
            }
            Ok(listener)
        })
        .collect()
}

/// Blames an error of a new load balancer on the field it concerns, where it can tell; store
/// failures and the like stay the form's.
pub(crate) fn create_field(e: ControlError, specs: &[ListenerSpec]) -> ControlError {
    match e.code {
        "DuplicateLoadBalancerName" | "TooManyLoadBalancers" => e.at("LoadBalancerName"),
        "TooManyTags" | "DuplicateTagKeys" => e.at("Tags"),
        "ValidationError" if e.message.contains("ag ") => e.at("Tags"),
        "ValidationError"
        | "DuplicateListener"
        | "InvalidConfigurationRequest"
        | "CertificateNotFound"
        | "TooManyListeners" => listener_field(e, specs),
        _ => e,
    }
}

/// Blames a model error about listeners on the field it concerns, where it can tell.
pub(crate) fn listener_field(e: ControlError, specs: &[ListenerSpec]) -> ControlError {
    let certificate_missing = e.code == "ValidationError" && e.message.contains("certificate");
    match specs.len() {
        1 if certificate_missing => e.at("Listeners.member.1.SSLCertificateId"),
        _ => e.at("Listeners"),
    }
}

impl Control {
    /// ELB `CreateLoadBalancer`. Idempotent as ELB's: the same name with the same listeners
    /// answers as if created (placement and tags are those of the first call). Returns its
    /// DNS name.
    pub fn create_load_balancer(&self, req: NewLoadBalancer) -> Result<String, ControlError> {
        let name = lb_name(&req.name)?;
        let snapshot = self.snapshot();
        let listeners = listeners(&snapshot.state, &self.account, &req.listeners)?;
        check_tags(&req.tags)?;
        let placement = placement_for(&self.region, &req)?;
        let now = crate::now();
        self.update(|s| {
            let existed = s.load_balancers.contains_key(&name);
            s.create_load_balancer(name.as_str(), listeners.clone(), now)?;
            if !existed {
                s.set_placement(name.as_str(), placement.clone())?;
                s.add_tags(name.as_str(), &req.tags)?;
            }
            Ok(())
        })
        .map_err(|e| create_field(e, &req.listeners))?;
        Ok(self.dns_name(name.as_str()))
    }

    /// ELB `DeleteLoadBalancer`.
    pub fn delete_load_balancer(&self, name: &str) -> Result<(), ControlError> {
        let name = lb_name(name)?;
        self.update(|s| s.delete_load_balancer(name.as_str()))
    }

    /// ELB `CreateLoadBalancerListeners`.
    pub fn create_listeners(&self, name: &str, specs: &[ListenerSpec]) -> Result<(), ControlError> {
        let name = lb_name(name)?;
        let snapshot = self.snapshot();
        let listeners = listeners(&snapshot.state, &self.account, specs)?;
        self.update(|s| s.create_listeners(name.as_str(), listeners.clone()))
            .map_err(|e| listener_field(e, specs))
    }

    /// ELB `DeleteLoadBalancerListeners`.
    pub fn delete_listeners(&self, name: &str, ports: &[u32]) -> Result<(), ControlError> {
        let name = lb_name(name)?;
        if ports.is_empty() {
            return Err(
                ControlError::validation("LoadBalancerPorts must name at least one port")
                    .at("LoadBalancerPorts"),
            );
        }
        let ports = ports
            .iter()
            .map(|p| port(*p, "LoadBalancerPorts"))
            .collect::<Result<Vec<_>, _>>()?;
        self.update(|s| s.delete_listeners(name.as_str(), &ports))
    }

    /// ELB `SetLoadBalancerListenerSSLCertificate`: the listener's default certificate.
    pub fn set_listener_certificate(
        &self,
        name: &str,
        lb_port: u32,
        reference: &str,
    ) -> Result<(), ControlError> {
        let name = lb_name(name)?;
        let lb_port = port(lb_port, "LoadBalancerPort")?;
        let account = &self.account;
        self.update(|s| {
            let id = resolve(s, account, reference)?;
            s.set_listener_certificate(name.as_str(), lb_port, &id)
        })
        .map_err(|e| match e.code {
            "CertificateNotFound" => e.at("SSLCertificateId"),
            _ => e,
        })
    }

    /// fulcrum's `AddListenerCertificates`: certificates served by SNI after those the listener
    /// has (one already there stays). Returns the ids named, without repeats, and the
    /// listener's default certificate.
    pub fn add_listener_certificates(
        &self,
        name: &str,
        lb_port: u32,
        references: &[String],
    ) -> Result<(Vec<String>, Option<String>), ControlError> {
        let (name, lb_port) = listener_certificates_request(name, lb_port, references)?;
        let account = &self.account;
        let (ids, default) = self.update(|s| {
            s.tls_listener(name.as_str(), lb_port)?;
            let ids = references
                .iter()
                .map(|r| resolve(s, account, r))
                .collect::<Result<Vec<_>, _>>()?;
            s.add_listener_certificates(name.as_str(), lb_port, &ids)?;
            let default = s
                .tls_listener(name.as_str(), lb_port)?
                .certificates
                .first()
                .cloned();
            Ok((ids, default))
        })?;
        let mut named: Vec<String> = Vec::new();
        for id in ids {
            if !named.contains(&id) {
                named.push(id);
            }
        }
        Ok((named, default))
    }

    /// fulcrum's `RemoveListenerCertificates`: the default certificate is refused; one not in
    /// the list is ignored.
    pub fn remove_listener_certificates(
        &self,
        name: &str,
        lb_port: u32,
        references: &[String],
    ) -> Result<(), ControlError> {
        let (name, lb_port) = listener_certificates_request(name, lb_port, references)?;
        let account = &self.account;
        self.update(|s| {
            s.tls_listener(name.as_str(), lb_port)?;
            let ids = references
                .iter()
                .map(|r| resolve(s, account, r))
                .collect::<Result<Vec<_>, _>>()?;
            s.remove_listener_certificates(name.as_str(), lb_port, &ids)
        })
    }

    /// ELB `ConfigureHealthCheck`; returns the check as applied.
    pub fn configure_health_check(
        &self,
        name: &str,
        spec: HealthCheckSpec,
    ) -> Result<HealthCheck, ControlError> {
        let name = lb_name(name)?;
        let check = spec.into_check()?;
        self.update(|s| s.configure_health_check(name.as_str(), check.clone()))
            .map_err(health_check_field)?;
        Ok(check)
    }

    /// ELB `ModifyLoadBalancerAttributes`; returns the attributes as they are now. The
    /// changes apply to the attributes as they are when the change commits (another writer's
    /// change to other attributes stays).
    pub fn modify_attributes(
        &self,
        name: &str,
        changes: &AttributeChanges,
    ) -> Result<Attributes, ControlError> {
        let name = lb_name(name)?;
        self.update_checked(|s| {
            let current = s.load_balancer(name.as_str())?.attributes.clone();
            let attrs = apply_attributes(changes, current)?;
            s.set_attributes(name.as_str(), attrs.clone())
                .map_err(attribute_field)?;
            Ok(attrs)
        })
    }

    /// ELB `AddTags` (one load balancer).
    pub fn add_tags(&self, name: &str, tags: &[Tag]) -> Result<(), ControlError> {
        let name = existing_lb_name(name)?;
        if tags.is_empty() {
            return Err(ControlError::validation("Tags must contain at least one tag").at("Tags"));
        }
        check_tags(tags)?;
        self.update(|s| s.add_tags(name.as_str(), tags))
    }

    /// ELB `RemoveTags` (one load balancer).
    pub fn remove_tags(&self, name: &str, keys: &[String]) -> Result<(), ControlError> {
        let name = existing_lb_name(name)?;
        self.update(|s| s.remove_tags(name.as_str(), keys))
    }

    /// The placement actions; returns the list changed, as it is now.
    pub fn change_placement(
        &self,
        name: &str,
        change: PlacementChange,
        items: Vec<String>,
    ) -> Result<Vec<String>, ControlError> {
        let name = lb_name(name)?;
        let list = change.list_name();
        if items.is_empty() {
            return Err(
                ControlError::validation(format!("{list} must contain at least one item")).at(list),
            );
        }
        self.update_checked(|s| {
            let mut placement = s.load_balancer(name.as_str())?.placement.clone();
            let shown = match change {
                PlacementChange::ApplySecurityGroups => {
                    placement.security_groups = items.clone();
                    &placement.security_groups
                }
                PlacementChange::AttachSubnets => {
                    add_unique(&mut placement.subnets, items.clone());
                    &placement.subnets
                }
                PlacementChange::DetachSubnets => {
                    remove_keeping_one(&mut placement.subnets, &items, "subnet")?;
                    &placement.subnets
                }
                PlacementChange::EnableZones => {
                    add_unique(&mut placement.availability_zones, items.clone());
                    &placement.availability_zones
                }
                PlacementChange::DisableZones => {
                    remove_keeping_one(
                        &mut placement.availability_zones,
                        &items,
                        "availability zone",
                    )?;
                    &placement.availability_zones
                }
            }
            .clone();
            s.set_placement(name.as_str(), placement)?;
            Ok(shown)
        })
    }
}

fn listener_certificates_request(
    name: &str,
    lb_port: u32,
    references: &[String],
) -> Result<(LbName, u16), ControlError> {
    let name = lb_name(name)?;
    let lb_port = port(lb_port, "LoadBalancerPort")?;
    if references.is_empty() {
        return Err(ControlError::validation(
            "Certificates must name at least one certificate (Certificates.member.N.CertificateArn)",
        )
        .at("Certificates"));
    }
    Ok((name, lb_port))
}

/// Tag keys may not repeat within one request.
pub(crate) fn check_tags(tags: &[Tag]) -> Result<(), ControlError> {
    let mut keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(ControlError::new(
            "DuplicateTagKeys",
            "A tag key was specified more than once",
        )
        .at("Tags"));
    }
    Ok(())
}

/// Blames an attribute the model refused on its field (the model's messages start with it).
fn attribute_field(e: fulcrum_model::ModelError) -> ControlError {
    let e = ControlError::from(e);
    let mut words = e.message.split_whitespace();
    let field = match (words.next(), words.next()) {
        (Some("IdleTimeout"), _) => "IdleTimeout",
        (Some("ConnectionDraining"), _) => "DrainingTimeout",
        (Some("AccessLog"), Some("EmitInterval")) => "EmitInterval",
        (Some("AccessLog"), Some("S3BucketPrefix")) => "S3BucketPrefix",
        _ => return e,
    };
    e.at(field)
}

/// The attributes after a request's changes; attributes the request does not name stay.
fn apply_attributes(c: &AttributeChanges, mut a: Attributes) -> Result<Attributes, ControlError> {
    if let Some(v) = c.cross_zone {
        a.cross_zone = v;
    }
    if let Some(v) = c.draining_enabled {
        a.draining_enabled = v;
    }
    if let Some(v) = c.draining_timeout_secs {
        a.draining_timeout_secs = v;
    }
    if let Some(v) = c.idle_timeout_secs {
        a.idle_timeout_secs = v;
    }
    if let Some(v) = c.access_log_enabled {
        a.access_log.enabled = v;
    }
    if let Some(v) = &c.access_log_bucket {
        a.access_log.s3_bucket_name = Some(v.clone());
    }
    if let Some(v) = c.access_log_interval {
        a.access_log.emit_interval = Some(v);
    }
    if let Some(v) = &c.access_log_prefix {
        a.access_log.s3_bucket_prefix = Some(v.clone());
    }
    for (k, v) in &c.additional {
        match k.as_str() {
            "fulcrum.balancing" => {
                a.balancing = Some(Balancing::parse(v).at("fulcrum.balancing")?);
            }
            "elb.http.desyncmitigationmode" => a.desync_mitigation_mode = Some(v.clone()),
            _ => {
                return Err(ControlError::new(
                    "LoadBalancerAttributeNotFound",
                    format!(
                        "{k} is not an attribute fulcrum knows (fulcrum.balancing, \
                         elb.http.desyncmitigationmode)"
                    ),
                ))
            }
        }
    }
    Ok(a)
}

fn add_unique(list: &mut Vec<String>, items: Vec<String>) {
    for i in items {
        if !list.contains(&i) {
            list.push(i);
        }
    }
}

fn remove_keeping_one(
    list: &mut Vec<String>,
    items: &[String],
    what: &str,
) -> Result<(), ControlError> {
    let left: Vec<String> = list
        .iter()
        .filter(|z| !items.contains(z))
        .cloned()
        .collect();
    if left.is_empty() {
        return Err(ControlError::validation(format!(
            "a load balancer must keep at least one {what}"
        )));
    }
    *list = left;
    Ok(())
}
