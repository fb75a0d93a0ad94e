//! ELB Classic `2012-06-01`: one module per group of actions; each action reads its parameters,
//! changes the state through the store (one atomic update) and writes its XML.

mod attributes;
mod describe;
pub(crate) mod fleet;
mod instances;
mod inventory;
mod listener_certificates;
mod listeners;
mod load_balancers;
mod placement;
mod policies;
mod policy_types;

use fulcrum_model::{LbName, Listener, Protocol, State, Tag};

use crate::error::ApiError;
use crate::params::Params;
use crate::xml::Xml;
use crate::{Call, ELB_NAMESPACE};

pub(crate) const VERSION: &str = "2012-06-01";

pub(crate) fn dispatch(call: &Call<'_>, action: &str) -> Result<String, ApiError> {
    if let Some(v) = call.params.get("Version") {
        if v != VERSION {
            return Err(ApiError::new(
                "InvalidAction",
                format!("Elastic Load Balancing (classic) speaks version {VERSION}, not {v}"),
            ));
        }
    }
    let result = match action {
        "CreateLoadBalancer" => load_balancers::create(call),
        "DeleteLoadBalancer" => load_balancers::delete(call),
        "DescribeLoadBalancers" => load_balancers::describe(call),
        "DescribeAccountLimits" => load_balancers::account_limits(call),
        "CreateLoadBalancerListeners" => listeners::create(call),
        "DeleteLoadBalancerListeners" => listeners::delete(call),
        "SetLoadBalancerListenerSSLCertificate" => listeners::set_certificate(call),
        "ConfigureHealthCheck" => instances::configure_health_check(call),
        "RegisterInstancesWithLoadBalancer" => instances::register(call),
        "DeregisterInstancesFromLoadBalancer" => instances::deregister(call),
        "DescribeInstanceHealth" => instances::describe_health(call),
        "CreateLBCookieStickinessPolicy" => policies::create_lb_cookie(call),
        "CreateAppCookieStickinessPolicy" => policies::create_app_cookie(call),
        "CreateLoadBalancerPolicy" => policies::create(call),
        "DeleteLoadBalancerPolicy" => policies::delete(call),
        "DescribeLoadBalancerPolicies" => policies::describe(call),
        "DescribeLoadBalancerPolicyTypes" => policy_types::describe(call),
        "SetLoadBalancerPoliciesOfListener" => policies::set_for_listener(call),
        "SetLoadBalancerPoliciesForBackendServer" => policies::set_for_backend(call),
        "ModifyLoadBalancerAttributes" => attributes::modify(call),
        "DescribeLoadBalancerAttributes" => attributes::describe(call),
        "AddTags" => placement::add_tags(call),
        "RemoveTags" => placement::remove_tags(call),
        "DescribeTags" => placement::describe_tags(call),
        "ApplySecurityGroupsToLoadBalancer" => placement::apply_security_groups(call),
        "AttachLoadBalancerToSubnets" => placement::attach_subnets(call),
        "DetachLoadBalancerFromSubnets" => placement::detach_subnets(call),
        "EnableAvailabilityZonesForLoadBalancer" => placement::enable_zones(call),
        "DisableAvailabilityZonesForLoadBalancer" => placement::disable_zones(call),
        // fulcrum's own: the instance inventory (id -> address).
        "PutInventoryInstance" => inventory::put(call),
        "DeleteInventoryInstance" => inventory::delete(call),
        "DescribeInventory" => inventory::describe(call),
        // fulcrum's own: several certificates on one TLS listener (as ELBv2's actions).
        "AddListenerCertificates" => listener_certificates::add(call),
        "RemoveListenerCertificates" => listener_certificates::remove(call),
        "DescribeListenerCertificates" => listener_certificates::describe(call),
        "DescribeFleet" => fleet::describe(call),
        _ => Err(ApiError::new(
            "InvalidAction",
            format!("Could not find operation {action} for version {VERSION}"),
        )),
    }?;
    Ok(result.finish(action, call.request_id))
}

/// Starts the XML answer of `action` with its `<{action}Result>` open.
pub(crate) fn answer(action: &str) -> Xml {
    Xml::result(action, ELB_NAMESPACE)
}

pub(crate) use crate::xml::done;

/// The `LoadBalancerName` parameter, checked.
pub(crate) fn lb_name(params: &Params) -> Result<LbName, ApiError> {
    Ok(LbName::parse(params.required("LoadBalancerName")?)?)
}

/// Listeners as the API gives them, with certificate ARNs resolved to ids.
pub(crate) fn parse_listeners(call: &Call<'_>, state: &State) -> Result<Vec<Listener>, ApiError> {
    let members = call.params.members("Listeners")?;
    if members.is_empty() {
        return Err(ApiError::validation(
            "Listeners must contain at least one listener",
        ));
    }
    members
        .iter()
        .map(|m| {
            let protocol: Protocol = m.required("Protocol")?.parse()?;
            let instance_protocol = match m.get("InstanceProtocol") {
                Some(p) => p.parse()?,
                None => match protocol {
                    Protocol::Http | Protocol::Https => Protocol::Http,
                    Protocol::Tcp | Protocol::Ssl => Protocol::Tcp,
                },
            };
            let port = |name: &str| -> Result<u16, ApiError> {
                let n: u32 = m.required_number(name)?;
                u16::try_from(n).ok().filter(|p| *p != 0).ok_or_else(|| {
                    ApiError::validation(format!("{name} {n} is not between 1 and 65535"))
                })
            };
            let mut listener = Listener::new(
                protocol,
                port("LoadBalancerPort")?,
                instance_protocol,
                port("InstancePort")?,
            );
            if let Some(reference) = m.get("SSLCertificateId").filter(|s| !s.is_empty()) {
                let cert = crate::arn::find_certificate(state, &call.api.account, reference)
                    .ok_or_else(|| {
                        ApiError::from(fulcrum_model::ModelError::CertificateNotFound(
                            reference.to_string(),
                        ))
                    })?;
                listener.certificates.push(cert.id.clone());
            }
            Ok(listener)
        })
        .collect()
}

/// Tags as the API gives them (`Tags.member.N.Key/Value`).
pub(crate) fn parse_tags(params: &Params) -> Result<Vec<Tag>, ApiError> {
    params
        .members("Tags")?
        .iter()
        .map(|m| {
            Ok(Tag {
                key: m.required("Key")?.to_owned(),
                value: m.get("Value").unwrap_or("").to_owned(),
            })
        })
        .collect()
}

/// Runs one change through the store and returns the closure's value.
pub(crate) fn update<T>(
    call: &Call<'_>,
    change: impl FnMut(&mut State) -> Result<T, fulcrum_model::ModelError>,
) -> Result<T, ApiError> {
    Ok(call.api.store.update(change)?)
}
