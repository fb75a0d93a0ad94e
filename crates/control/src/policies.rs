//! Policies of a load balancer: create (checked against their type and what they name),
//! delete, and apply to listeners and to instance ports (each type only where it fits).

use fulcrum_model::{LbName, ModelError, Policy, PolicyKind, State};

use crate::error::At;
use crate::load_balancers::lb_name;
use crate::policy_types::policy_kind;
use crate::{Control, ControlError};

/// A new policy, by kind: the two stickiness policies have actions of their own in ELB, every
/// other type goes through `CreateLoadBalancerPolicy` with its attributes.
#[derive(Debug, Clone)]
pub enum NewPolicy {
    /// `CreateLBCookieStickinessPolicy`: `None` lasts as long as the browser session.
    LbCookie { expiration_secs: Option<u64> },
    /// `CreateAppCookieStickinessPolicy`.
    AppCookie { cookie_name: String },
    /// `CreateLoadBalancerPolicy`.
    Typed {
        type_name: String,
        attributes: Vec<(String, String)>,
    },
}

/// Policy types an instance port takes.
const FOR_INSTANCES: [&str; 3] = [
    "ProxyProtocolPolicyType",
    "BackendServerAuthenticationPolicyType",
    "BackendClientCertificatePolicyType",
];

impl Control {
    pub fn create_policy(
        &self,
        name: &str,
        policy_name: &str,
        new: NewPolicy,
    ) -> Result<(), ControlError> {
        let name = lb_name(name)?;
        let kind = match new {
            NewPolicy::LbCookie { expiration_secs } => {
                PolicyKind::LbCookieStickiness { expiration_secs }
            }
            NewPolicy::AppCookie { cookie_name } => PolicyKind::AppCookieStickiness { cookie_name },
            NewPolicy::Typed {
                type_name,
                attributes,
            } => policy_kind(&type_name, attributes).at("PolicyAttributes")?,
        };
        let policy = Policy {
            name: policy_name.to_owned(),
            kind,
        };
        // What the policy names is checked on the state the change commits to.
        self.update_checked(|s| {
            check_references(s, &name, &policy.kind)?;
            s.create_policy(name.as_str(), policy.clone())
                .map_err(|e| match e.code() {
                    "DuplicatePolicyName" | "ValidationError" => {
                        ControlError::from(e).at("PolicyName")
                    }
                    _ => e.into(),
                })
        })
    }

    pub fn delete_policy(&self, name: &str, policy_name: &str) -> Result<(), ControlError> {
        let name = lb_name(name)?;
        self.update(|s| s.delete_policy(name.as_str(), policy_name))
    }

    /// ELB `SetLoadBalancerPoliciesOfListener`: the listener's whole list of policies.
    pub fn set_listener_policies(
        &self,
        name: &str,
        lb_port: u16,
        names: &[String],
    ) -> Result<(), ControlError> {
        let name = lb_name(name)?;
        self.update_checked(|s| {
            check_listener_policies(s, &name, lb_port, names)?;
            Ok(s.set_listener_policies(name.as_str(), lb_port, names.to_vec())?)
        })
    }

    /// ELB `SetLoadBalancerPoliciesForBackendServer`: the instance port's whole list.
    pub fn set_backend_policies(
        &self,
        name: &str,
        instance_port: u16,
        names: &[String],
    ) -> Result<(), ControlError> {
        let name = lb_name(name)?;
        self.update_checked(|s| {
            let lb = s.load_balancer(name.as_str())?;
            for n in names {
                if let Some(policy) = lb.policy(n) {
                    let t = policy.kind.type_name();
                    if !FOR_INSTANCES.contains(&t) {
                        return Err(ControlError::invalid_configuration(format!(
                            "{t} policy {n} cannot be applied to an instance port"
                        )));
                    }
                }
            }
            Ok(s.set_backend_policies(name.as_str(), instance_port, names.to_vec())?)
        })
    }

    /// Turns stickiness on for an HTTP or HTTPS listener with an LB cookie policy of its own
    /// (`fulcrum-sticky-PORT`, replaced when the expiration changes), or off: the console's one
    /// switch for what ELB does in two or three calls, here in one change of the store. The
    /// listener's other policies stay.
    pub fn set_stickiness(
        &self,
        name: &str,
        lb_port: u16,
        sticky: Option<Option<u64>>,
    ) -> Result<(), ControlError> {
        let lb = lb_name(name)?;
        let own = format!("fulcrum-sticky-{lb_port}");
        self.update(|s| {
            let current = s.load_balancer(lb.as_str())?;
            let listener = current.listener(lb_port).ok_or_else(|| {
                fulcrum_model::ModelError::ListenerNotFound {
                    lb: lb.to_string(),
                    port: lb_port,
                }
            })?;
            if !listener.protocol.is_http() {
                return Err(fulcrum_model::ModelError::InvalidConfiguration(format!(
                    "stickiness needs an HTTP or HTTPS listener; port {lb_port} is {}",
                    listener.protocol
                )));
            }
            let mut names: Vec<String> = listener
                .policy_names
                .iter()
                .filter(|n| !current.policy(n).is_some_and(|p| p.kind.is_stickiness()))
                .cloned()
                .collect();
            let had_own = current.policy(&own).is_some();
            s.set_listener_policies(lb.as_str(), lb_port, names.clone())?;
            if had_own {
                s.delete_policy(lb.as_str(), &own)?;
            }
            if let Some(expiration_secs) = sticky {
                s.create_policy(
                    lb.as_str(),
                    Policy {
                        name: own.clone(),
                        kind: PolicyKind::LbCookieStickiness { expiration_secs },
                    },
                )?;
                names.push(own.clone());
                s.set_listener_policies(lb.as_str(), lb_port, names.clone())?;
            }
            Ok(())
        })
    }
}

/// What a new policy names must be there: a backend authentication policy's public-key
/// policies on the same load balancer, a client-certificate policy's certificate (usable as a
/// client certificate).
fn check_references(state: &State, name: &LbName, kind: &PolicyKind) -> Result<(), ControlError> {
    let PolicyKind::Other {
        type_name,
        attributes,
    } = kind
    else {
        return Ok(());
    };
    match type_name.as_str() {
        "BackendServerAuthenticationPolicyType" => {
            let lb = state.load_balancer(name.as_str())?;
            for (_, key_policy) in attributes
                .iter()
                .filter(|(k, _)| k == "PublicKeyPolicyName")
            {
                if lb.policy(key_policy).map(|p| p.kind.type_name()) != Some("PublicKeyPolicyType")
                {
                    return Err(ControlError::new(
                        "PolicyNotFound",
                        format!(
                            "There is no PublicKeyPolicyType policy named {key_policy} for load \
                             balancer {name}"
                        ),
                    ));
                }
            }
        }
        "BackendClientCertificatePolicyType" => {
            let cert_name = attributes
                .iter()
                .find(|(k, _)| k == "ServerCertificateName")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let cert = state
                .certificate_by_name(cert_name)
                .ok_or_else(|| ModelError::CertificateNotFound(cert_name.to_owned()))?;
            fulcrum_tls::import_stored(cert)
                .and_then(|c| fulcrum_tls::check_client_certificate(&c))
                .map_err(|e| ControlError::invalid_configuration(e.to_string()))?;
        }
        _ => {}
    }
    Ok(())
}

/// Policy types that can sit on a listener, and where.
fn check_listener_policies(
    state: &State,
    name: &LbName,
    lb_port: u16,
    names: &[String],
) -> Result<(), ControlError> {
    let lb = state.load_balancer(name.as_str())?;
    // Without the listener, the model reports ListenerNotFound.
    let Some(listener) = lb.listener(lb_port) else {
        return Ok(());
    };
    for n in names {
        let Some(policy) = lb.policy(n) else { continue };
        let t = policy.kind.type_name();
        let fits = match t {
            "SSLNegotiationPolicyType" => listener.protocol.is_tls(),
            "LBCookieStickinessPolicyType" | "AppCookieStickinessPolicyType" => {
                listener.protocol.is_http()
            }
            _ => false,
        };
        if !fits {
            return Err(ControlError::invalid_configuration(format!(
                "{t} policy {n} cannot be applied to the {} listener on port {lb_port}",
                listener.protocol
            )));
        }
    }
    let negotiation = names
        .iter()
        .filter(|n| {
            lb.policy(n)
                .is_some_and(|p| p.kind.type_name() == "SSLNegotiationPolicyType")
        })
        .count();
    if negotiation > 1 {
        return Err(ControlError::invalid_configuration(
            "a listener takes at most one SSL negotiation policy",
        ));
    }
    Ok(())
}
