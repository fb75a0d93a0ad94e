//! Tags, and the placement actions (zones, subnets, security groups). A self-hosted node has no
//! zones or subnets to act on: these are recorded and echoed so that clients and Terraform work.

use fulcrum_control::PlacementChange;
use fulcrum_model::LbName;

use super::{answer, done, parse_tags};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

/// AddTags and RemoveTags name exactly one load balancer, DescribeTags up to 20.
fn names(call: &Call<'_>, max: usize) -> Result<Vec<String>, ApiError> {
    let names = call.params.strings("LoadBalancerNames")?;
    if names.is_empty() || names.len() > max {
        return Err(ApiError::validation(format!(
            "LoadBalancerNames must name 1 to {max} load balancers"
        )));
    }
    Ok(names)
}

pub(crate) fn add_tags(call: &Call<'_>) -> Result<Xml, ApiError> {
    let names = names(call, 1)?;
    call.ctl.add_tags(&names[0], &parse_tags(call.params)?)?;
    Ok(done(answer("AddTags"), "AddTags"))
}

pub(crate) fn remove_tags(call: &Call<'_>) -> Result<Xml, ApiError> {
    let names = names(call, 1)?;
    let keys: Vec<String> = call
        .params
        .members("Tags")?
        .iter()
        .map(|m| m.required("Key").map(str::to_owned))
        .collect::<Result<_, _>>()?;
    call.ctl.remove_tags(&names[0], &keys)?;
    Ok(done(answer("RemoveTags"), "RemoveTags"))
}

pub(crate) fn describe_tags(call: &Call<'_>) -> Result<Xml, ApiError> {
    let names = names(call, 20)?
        .iter()
        .map(|n| fulcrum_control::existing_lb_name(n))
        .collect::<Result<Vec<LbName>, _>>()?;
    let snapshot = call.ctl.snapshot();
    let lbs = names
        .iter()
        .map(|n| snapshot.state.load_balancer(n.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut x = answer("DescribeTags");
    x.list("TagDescriptions", lbs, |x, lb| {
        x.text("LoadBalancerName", &lb.name)
            .list("Tags", &lb.tags, |x, t| {
                x.text("Key", &t.key).text("Value", &t.value);
            });
    });
    Ok(done(x, "DescribeTags"))
}

/// Runs a placement change and answers with the list it changed.
fn change_placement(
    call: &Call<'_>,
    action: &str,
    change: PlacementChange,
) -> Result<Xml, ApiError> {
    let list = change.list_name();
    let shown = call.ctl.change_placement(
        call.params.required("LoadBalancerName")?,
        change,
        call.params.strings(list)?,
    )?;
    let mut x = answer(action);
    x.strings(list, &shown);
    Ok(done(x, action))
}

pub(crate) fn apply_security_groups(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "ApplySecurityGroupsToLoadBalancer",
        PlacementChange::ApplySecurityGroups,
    )
}

pub(crate) fn attach_subnets(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "AttachLoadBalancerToSubnets",
        PlacementChange::AttachSubnets,
    )
}

pub(crate) fn detach_subnets(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "DetachLoadBalancerFromSubnets",
        PlacementChange::DetachSubnets,
    )
}

pub(crate) fn enable_zones(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "EnableAvailabilityZonesForLoadBalancer",
        PlacementChange::EnableZones,
    )
}

pub(crate) fn disable_zones(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "DisableAvailabilityZonesForLoadBalancer",
        PlacementChange::DisableZones,
    )
}
