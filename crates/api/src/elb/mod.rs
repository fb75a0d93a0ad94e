//! ELB Classic `2012-06-01`: one module per group of actions; each action reads its parameters
//! into the service layer's typed request, runs it (`fulcrum_control`) and writes its XML.

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

use fulcrum_control::ListenerSpec;
use fulcrum_model::{LbName, Tag};

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
    Ok(fulcrum_control::lb_name(
        params.required("LoadBalancerName")?,
    )?)
}

/// Listeners as the API gives them (`Listeners.member.N.*`).
pub(crate) fn parse_listeners(params: &Params) -> Result<Vec<ListenerSpec>, ApiError> {
    params
        .members("Listeners")?
        .iter()
        .map(|m| {
            Ok(ListenerSpec {
                protocol: m.required("Protocol")?.to_owned(),
                load_balancer_port: m.required_number("LoadBalancerPort")?,
                instance_protocol: m.get("InstanceProtocol").map(str::to_owned),
                instance_port: m.required_number("InstancePort")?,
                certificate: m.get("SSLCertificateId").map(str::to_owned),
            })
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
