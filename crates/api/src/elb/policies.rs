//! Policies of a load balancer: create, delete, describe, and apply to listeners and to
//! instance ports.

use fulcrum_model::{Policy, PolicyKind};

use super::listeners::port;
use super::policy_types::policy_kind;
use super::{answer, done, lb_name, update};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

fn create_policy(call: &Call<'_>, action: &str, kind: PolicyKind) -> Result<Xml, ApiError> {
    let p = call.params;
    let name = lb_name(p)?;
    let policy = Policy {
        name: p.required("PolicyName")?.to_owned(),
        kind,
    };
    update(call, |s| s.create_policy(name.as_str(), policy.clone()))?;
    Ok(done(answer(action), action))
}

pub(crate) fn create_lb_cookie(call: &Call<'_>) -> Result<Xml, ApiError> {
    let expiration_secs = call.params.number("CookieExpirationPeriod")?;
    create_policy(
        call,
        "CreateLBCookieStickinessPolicy",
        PolicyKind::LbCookieStickiness { expiration_secs },
    )
}

pub(crate) fn create_app_cookie(call: &Call<'_>) -> Result<Xml, ApiError> {
    let cookie_name = call.params.required("CookieName")?.to_owned();
    create_policy(
        call,
        "CreateAppCookieStickinessPolicy",
        PolicyKind::AppCookieStickiness { cookie_name },
    )
}

pub(crate) fn create(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let type_name = p.required("PolicyTypeName")?;
    let attributes: Vec<(String, String)> = p
        .members("PolicyAttributes")?
        .iter()
        .map(|m| {
            Ok((
                m.required("AttributeName")?.to_owned(),
                m.get("AttributeValue").unwrap_or("").to_owned(),
            ))
        })
        .collect::<Result<_, ApiError>>()?;
    let kind = policy_kind(type_name, attributes)?;
    if let PolicyKind::Other {
        type_name,
        attributes,
    } = &kind
    {
        if type_name == "BackendServerAuthenticationPolicyType" {
            // The public-key policies it names must exist on the same load balancer.
            let name = lb_name(p)?;
            let snapshot = call.api.store.snapshot();
            let lb = snapshot.state.load_balancer(name.as_str())?;
            for (_, key_policy) in attributes
                .iter()
                .filter(|(k, _)| k == "PublicKeyPolicyName")
            {
                match lb.policy(key_policy).map(|p| p.kind.type_name()) {
                    Some("PublicKeyPolicyType") => {}
                    _ => {
                        return Err(ApiError::new(
                            "PolicyNotFound",
                            format!("There is no PublicKeyPolicyType policy named {key_policy} for load balancer {name}"),
                        ))
                    }
                }
            }
        }
    }
    if let PolicyKind::Other {
        type_name,
        attributes,
    } = &kind
    {
        if type_name == "BackendClientCertificatePolicyType" {
            // The certificate must exist and be usable as a client certificate.
            let name = attributes
                .iter()
                .find(|(k, _)| k == "ServerCertificateName")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let snapshot = call.api.store.snapshot();
            let cert = snapshot.state.certificate_by_name(name).ok_or_else(|| {
                ApiError::from(fulcrum_model::ModelError::CertificateNotFound(
                    name.to_string(),
                ))
            })?;
            fulcrum_tls::import_stored(cert)
                .and_then(|c| fulcrum_tls::check_client_certificate(&c))
                .map_err(|e| ApiError::new("InvalidConfigurationRequest", e.to_string()))?;
        }
    }
    create_policy(call, "CreateLoadBalancerPolicy", kind)
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let name = lb_name(p)?;
    let policy = p.required("PolicyName")?;
    update(call, |s| s.delete_policy(name.as_str(), policy))?;
    Ok(done(
        answer("DeleteLoadBalancerPolicy"),
        "DeleteLoadBalancerPolicy",
    ))
}

/// A policy's attributes as ELB describes them.
fn attributes_of(kind: &PolicyKind) -> Vec<(String, String)> {
    match kind {
        PolicyKind::AppCookieStickiness { cookie_name } => {
            vec![("CookieName".into(), cookie_name.clone())]
        }
        PolicyKind::LbCookieStickiness { expiration_secs } => expiration_secs
            .map(|e| vec![("CookieExpirationPeriod".into(), e.to_string())])
            .unwrap_or_default(),
        PolicyKind::Other { attributes, .. } => attributes.clone(),
        _ => Vec::new(),
    }
}

/// A policy as described: name, type name, attributes.
type Described = (String, String, Vec<(String, String)>);

pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let wanted = p.strings("PolicyNames")?;
    // Without a load balancer: the predefined policies.
    let policies: Vec<Described> = match p.get("LoadBalancerName") {
        None => fulcrum_tls::PREDEFINED_POLICIES
            .iter()
            .map(|pp| {
                (
                    pp.name.to_owned(),
                    "SSLNegotiationPolicyType".to_owned(),
                    pp.attributes(),
                )
            })
            .collect(),
        Some(_) => {
            let name = lb_name(p)?;
            let snapshot = call.api.store.snapshot();
            let lb = snapshot.state.load_balancer(name.as_str())?;
            lb.policies
                .iter()
                .map(|pol| {
                    (
                        pol.name.clone(),
                        pol.kind.type_name().to_owned(),
                        attributes_of(&pol.kind),
                    )
                })
                .collect()
        }
    };
    if let Some(missing) = wanted
        .iter()
        .find(|w| !policies.iter().any(|(n, _, _)| n == *w))
    {
        return Err(ApiError::new(
            "PolicyNotFound",
            format!("There is no policy with name {missing}"),
        ));
    }
    let chosen = policies
        .into_iter()
        .filter(|(n, _, _)| wanted.is_empty() || wanted.contains(n));
    let mut x = answer("DescribeLoadBalancerPolicies");
    x.list(
        "PolicyDescriptions",
        chosen,
        |x, (name, type_name, attributes)| {
            x.text("PolicyName", name)
                .text("PolicyTypeName", type_name)
                .list("PolicyAttributeDescriptions", attributes, |x, (k, v)| {
                    x.text("AttributeName", k).text("AttributeValue", v);
                });
        },
    );
    Ok(done(x, "DescribeLoadBalancerPolicies"))
}

pub(crate) fn set_for_listener(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let name = lb_name(p)?;
    let lb_port = port(p.required("LoadBalancerPort")?)?;
    let names = p.strings("PolicyNames")?;
    check_listener_policies(call, name.as_str(), lb_port, &names)?;
    update(call, |s| {
        s.set_listener_policies(name.as_str(), lb_port, names.clone())
    })?;
    Ok(done(
        answer("SetLoadBalancerPoliciesOfListener"),
        "SetLoadBalancerPoliciesOfListener",
    ))
}

/// Policy types that can sit on a listener, and where.
fn check_listener_policies(
    call: &Call<'_>,
    lb: &str,
    lb_port: u16,
    names: &[String],
) -> Result<(), ApiError> {
    let snapshot = call.api.store.snapshot();
    let lb = snapshot.state.load_balancer(lb)?;
    let Some(listener) = lb.listener(lb_port) else {
        return Ok(()); // the model reports ListenerNotFound
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
            return Err(ApiError::new(
                "InvalidConfigurationRequest",
                format!(
                    "{t} policy {n} cannot be applied to the {} listener on port {lb_port}",
                    listener.protocol
                ),
            ));
        }
    }
    if names
        .iter()
        .filter(|n| {
            lb.policy(n)
                .is_some_and(|p| p.kind.type_name() == "SSLNegotiationPolicyType")
        })
        .count()
        > 1
    {
        return Err(ApiError::new(
            "InvalidConfigurationRequest",
            "a listener takes at most one SSL negotiation policy",
        ));
    }
    Ok(())
}

pub(crate) fn set_for_backend(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let name = lb_name(p)?;
    let instance_port = port(p.required("InstancePort")?)?;
    let names = p.strings("PolicyNames")?;
    {
        let snapshot = call.api.store.snapshot();
        let lb = snapshot.state.load_balancer(name.as_str())?;
        for n in &names {
            if let Some(policy) = lb.policy(n) {
                let t = policy.kind.type_name();
                let for_instances = [
                    "ProxyProtocolPolicyType",
                    "BackendServerAuthenticationPolicyType",
                    "BackendClientCertificatePolicyType",
                ];
                if !for_instances.contains(&t) {
                    return Err(ApiError::new(
                        "InvalidConfigurationRequest",
                        format!("{t} policy {n} cannot be applied to an instance port"),
                    ));
                }
            }
        }
    }
    update(call, |s| {
        s.set_backend_policies(name.as_str(), instance_port, names.clone())
    })?;
    Ok(done(
        answer("SetLoadBalancerPoliciesForBackendServer"),
        "SetLoadBalancerPoliciesForBackendServer",
    ))
}
