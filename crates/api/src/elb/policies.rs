//! Policies of a load balancer: create, delete, describe, and apply to listeners and to
//! instance ports.

use fulcrum_control::NewPolicy;
use fulcrum_model::PolicyKind;

use super::listeners::port;
use super::{answer, done, lb_name};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

fn create_policy(call: &Call<'_>, action: &str, new: NewPolicy) -> Result<Xml, ApiError> {
    let p = call.params;
    call.ctl.create_policy(
        p.required("LoadBalancerName")?,
        p.required("PolicyName")?,
        new,
    )?;
    Ok(done(answer(action), action))
}

pub(crate) fn create_lb_cookie(call: &Call<'_>) -> Result<Xml, ApiError> {
    let expiration_secs = call.params.number("CookieExpirationPeriod")?;
    create_policy(
        call,
        "CreateLBCookieStickinessPolicy",
        NewPolicy::LbCookie { expiration_secs },
    )
}

pub(crate) fn create_app_cookie(call: &Call<'_>) -> Result<Xml, ApiError> {
    let cookie_name = call.params.required("CookieName")?.to_owned();
    create_policy(
        call,
        "CreateAppCookieStickinessPolicy",
        NewPolicy::AppCookie { cookie_name },
    )
}

pub(crate) fn create(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
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
    create_policy(
        call,
        "CreateLoadBalancerPolicy",
        NewPolicy::Typed {
            type_name: p.required("PolicyTypeName")?.to_owned(),
            attributes,
        },
    )
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    call.ctl
        .delete_policy(p.required("LoadBalancerName")?, p.required("PolicyName")?)?;
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
            let snapshot = call.ctl.snapshot();
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
    call.ctl.set_listener_policies(
        p.required("LoadBalancerName")?,
        port(p, "LoadBalancerPort")?,
        &p.strings("PolicyNames")?,
    )?;
    Ok(done(
        answer("SetLoadBalancerPoliciesOfListener"),
        "SetLoadBalancerPoliciesOfListener",
    ))
}

pub(crate) fn set_for_backend(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    call.ctl.set_backend_policies(
        p.required("LoadBalancerName")?,
        port(p, "InstancePort")?,
        &p.strings("PolicyNames")?,
    )?;
    Ok(done(
        answer("SetLoadBalancerPoliciesForBackendServer"),
        "SetLoadBalancerPoliciesForBackendServer",
    ))
}
