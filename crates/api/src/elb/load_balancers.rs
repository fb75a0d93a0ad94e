//! CreateLoadBalancer, DeleteLoadBalancer, DescribeLoadBalancers, DescribeAccountLimits.

use fulcrum_control::NewLoadBalancer;
use fulcrum_model::{MAX_LISTENERS_PER_LB, MAX_LOAD_BALANCERS};

use super::{answer, done, parse_listeners, parse_tags};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn create(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let dns_name = call.ctl.create_load_balancer(NewLoadBalancer {
        name: p.required("LoadBalancerName")?.to_owned(),
        listeners: parse_listeners(p)?,
        tags: parse_tags(p)?,
        availability_zones: p.strings("AvailabilityZones")?,
        subnets: p.strings("Subnets")?,
        security_groups: p.strings("SecurityGroups")?,
        scheme: p.get("Scheme").map(str::to_owned),
    })?;
    let mut x = answer("CreateLoadBalancer");
    x.text("DNSName", dns_name);
    Ok(done(x, "CreateLoadBalancer"))
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    call.ctl
        .delete_load_balancer(call.params.required("LoadBalancerName")?)?;
    Ok(done(answer("DeleteLoadBalancer"), "DeleteLoadBalancer"))
}

pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let names = p
        .strings("LoadBalancerNames")?
        .iter()
        .map(|n| fulcrum_control::existing_lb_name(n))
        .collect::<Result<Vec<_>, _>>()?;
    let page_size: usize = p.number("PageSize")?.unwrap_or(400);
    if !(1..=400).contains(&page_size) {
        return Err(ApiError::validation("PageSize must be between 1 and 400"));
    }
    if !names.is_empty() && p.get("PageSize").is_some() {
        return Err(ApiError::validation(
            "PageSize cannot be used with LoadBalancerNames",
        ));
    }
    let snapshot = call.ctl.snapshot();
    let state = &snapshot.state;
    let chosen: Vec<_> = if names.is_empty() {
        // Names sort the same way every time, so the marker is the last name of a page.
        let after = p.get("Marker").unwrap_or("");
        state
            .load_balancers
            .values()
            .filter(|lb| lb.name.as_str() > after)
            .collect()
    } else {
        names
            .iter()
            .map(|n| {
                state.load_balancers.get(n).ok_or_else(|| {
                    ApiError::from(fulcrum_model::ModelError::LoadBalancerNotFound(
                        n.to_string(),
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let more = chosen.len() > page_size;
    let page = &chosen[..chosen.len().min(page_size)];
    let mut x = answer("DescribeLoadBalancers");
    x.list("LoadBalancerDescriptions", page.iter(), |x, lb| {
        super::describe::load_balancer(x, call, state, lb)
    });
    if more {
        x.text("NextMarker", &page[page.len() - 1].name);
    }
    Ok(done(x, "DescribeLoadBalancers"))
}

pub(crate) fn account_limits(call: &Call<'_>) -> Result<Xml, ApiError> {
    // Paged as DescribeLoadBalancers: PageSize 1 to 400 (default 400), the marker is the name
    // of the last limit shown, and NextMarker only when more follow.
    let p = call.params;
    let page_size: usize = p.number("PageSize")?.unwrap_or(400);
    if !(1..=400).contains(&page_size) {
        return Err(ApiError::validation("PageSize must be between 1 and 400"));
    }
    let limits = [
        ("classic-load-balancers", MAX_LOAD_BALANCERS),
        ("classic-listeners", MAX_LISTENERS_PER_LB),
        ("classic-registered-instances", 10_000),
    ];
    let start = match p.get("Marker") {
        None => 0,
        Some(m) => limits
            .iter()
            .position(|(name, _)| *name == m)
            .map(|i| i + 1)
            .ok_or_else(|| {
                ApiError::validation(format!("Marker '{m}' was not returned by this API"))
            })?,
    };
    let rest = &limits[start..];
    let page = &rest[..rest.len().min(page_size)];
    let mut x = answer("DescribeAccountLimits");
    x.list("Limits", page, |x, (name, max)| {
        x.text("Name", name).text("Max", max);
    });
    if rest.len() > page.len() {
        if let Some((last, _)) = page.last() {
            x.text("NextMarker", last);
        }
    }
    Ok(done(x, "DescribeAccountLimits"))
}
