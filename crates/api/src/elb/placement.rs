//! Tags, and the placement actions (zones, subnets, security groups). A self-hosted node has no
//! zones or subnets to act on: these are recorded and echoed so that clients and Terraform work.

use fulcrum_model::{LbName, Placement};

use super::{answer, done, lb_name, parse_tags, update};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

/// AddTags and RemoveTags name exactly one load balancer, DescribeTags up to 20.
fn names(call: &Call<'_>, max: usize) -> Result<Vec<LbName>, ApiError> {
    let names = call.params.strings("LoadBalancerNames")?;
    if names.is_empty() || names.len() > max {
        return Err(ApiError::validation(format!(
            "LoadBalancerNames must name 1 to {max} load balancers"
        )));
    }
    names
        .iter()
        .map(|n| {
            LbName::parse(n).map_err(|_| {
                ApiError::from(fulcrum_model::ModelError::LoadBalancerNotFound(
                    n.to_string(),
                ))
            })
        })
        .collect()
}

pub(crate) fn add_tags(call: &Call<'_>) -> Result<Xml, ApiError> {
    let names = names(call, 1)?;
    let tags = parse_tags(call.params)?;
    if tags.is_empty() {
        return Err(ApiError::validation("Tags must contain at least one tag"));
    }
    let mut keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::new(
            "DuplicateTagKeys",
            "A tag key was specified more than once",
        ));
    }
    update(call, |s| s.add_tags(names[0].as_str(), &tags))?;
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
    update(call, |s| s.remove_tags(names[0].as_str(), &keys))?;
    Ok(done(answer("RemoveTags"), "RemoveTags"))
}

pub(crate) fn describe_tags(call: &Call<'_>) -> Result<Xml, ApiError> {
    let names = names(call, 20)?;
    let snapshot = call.api.store.snapshot();
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

/// Changes the placement of the named load balancer and answers with one of its lists.
fn change_placement(
    call: &Call<'_>,
    action: &str,
    list: &str,
    edit: impl FnOnce(&mut Placement, Vec<String>) -> Result<(), ApiError>,
    shown: impl Fn(&Placement) -> &Vec<String>,
) -> Result<Xml, ApiError> {
    let name = lb_name(call.params)?;
    let items = call.params.strings(list)?;
    if items.is_empty() {
        return Err(ApiError::validation(format!(
            "{list} must contain at least one item"
        )));
    }
    let mut placement = call
        .api
        .store
        .snapshot()
        .state
        .load_balancer(name.as_str())?
        .placement
        .clone();
    edit(&mut placement, items)?;
    let result = shown(&placement).clone();
    update(call, |s| s.set_placement(name.as_str(), placement.clone()))?;
    let mut x = answer(action);
    x.strings(list, &result);
    Ok(done(x, action))
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
) -> Result<(), ApiError> {
    let left: Vec<String> = list
        .iter()
        .filter(|z| !items.contains(z))
        .cloned()
        .collect();
    if left.is_empty() {
        return Err(ApiError::validation(format!(
            "a load balancer must keep at least one {what}"
        )));
    }
    *list = left;
    Ok(())
}

pub(crate) fn apply_security_groups(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "ApplySecurityGroupsToLoadBalancer",
        "SecurityGroups",
        |p, items| {
            p.security_groups = items;
            Ok(())
        },
        |p| &p.security_groups,
    )
}

pub(crate) fn attach_subnets(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "AttachLoadBalancerToSubnets",
        "Subnets",
        |p, items| {
            add_unique(&mut p.subnets, items);
            Ok(())
        },
        |p| &p.subnets,
    )
}

pub(crate) fn detach_subnets(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "DetachLoadBalancerFromSubnets",
        "Subnets",
        |p, items| remove_keeping_one(&mut p.subnets, &items, "subnet"),
        |p| &p.subnets,
    )
}

pub(crate) fn enable_zones(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "EnableAvailabilityZonesForLoadBalancer",
        "AvailabilityZones",
        |p, items| {
            add_unique(&mut p.availability_zones, items);
            Ok(())
        },
        |p| &p.availability_zones,
    )
}

pub(crate) fn disable_zones(call: &Call<'_>) -> Result<Xml, ApiError> {
    change_placement(
        call,
        "DisableAvailabilityZonesForLoadBalancer",
        "AvailabilityZones",
        |p, items| remove_keeping_one(&mut p.availability_zones, &items, "availability zone"),
        |p| &p.availability_zones,
    )
}
