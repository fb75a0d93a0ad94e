//! ConfigureHealthCheck, RegisterInstancesWithLoadBalancer, DeregisterInstancesFromLoadBalancer,
//! DescribeInstanceHealth.

use fulcrum_model::{HealthCheck, InstanceId};
use fulcrum_proxy::{HealthState, HealthStatus};

use super::{answer, done, lb_name, update};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn configure_health_check(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let name = lb_name(p)?;
    let check = HealthCheck {
        target: p.required("HealthCheck.Target")?.parse()?,
        interval_secs: p.required_number("HealthCheck.Interval")?,
        timeout_secs: p.required_number("HealthCheck.Timeout")?,
        healthy_threshold: p.required_number("HealthCheck.HealthyThreshold")?,
        unhealthy_threshold: p.required_number("HealthCheck.UnhealthyThreshold")?,
    };
    let applied = check.clone();
    update(call, |s| {
        s.configure_health_check(name.as_str(), check.clone())
    })?;
    let mut x = answer("ConfigureHealthCheck");
    x.open("HealthCheck")
        .text("Target", &applied.target)
        .text("Interval", applied.interval_secs)
        .text("Timeout", applied.timeout_secs)
        .text("UnhealthyThreshold", applied.unhealthy_threshold)
        .text("HealthyThreshold", applied.healthy_threshold)
        .close("HealthCheck");
    Ok(done(x, "ConfigureHealthCheck"))
}

fn instance_ids(call: &Call<'_>, required: bool) -> Result<Vec<InstanceId>, ApiError> {
    let ids = call.params.member_field("Instances", "InstanceId")?;
    if required && ids.is_empty() {
        return Err(ApiError::validation(
            "Instances must name at least one instance",
        ));
    }
    Ok(ids
        .iter()
        .map(|i| InstanceId::parse(i))
        .collect::<Result<_, _>>()?)
}

fn instances_answer(action: &str, instances: &[InstanceId]) -> Xml {
    let mut x = answer(action);
    x.list("Instances", instances, |x, id| {
        x.text("InstanceId", id);
    });
    done(x, action)
}

pub(crate) fn register(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = lb_name(call.params)?;
    let ids = instance_ids(call, true)?;
    let now = update(call, |s| {
        s.register_instances(name.as_str(), &ids)?;
        Ok(s.load_balancer(name.as_str())?.instances.clone())
    })?;
    Ok(instances_answer("RegisterInstancesWithLoadBalancer", &now))
}

pub(crate) fn deregister(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = lb_name(call.params)?;
    let ids = instance_ids(call, true)?;
    let now = update(call, |s| {
        s.deregister_instances(name.as_str(), &ids)?;
        Ok(s.load_balancer(name.as_str())?.instances.clone())
    })?;
    Ok(instances_answer(
        "DeregisterInstancesFromLoadBalancer",
        &now,
    ))
}

pub(crate) fn describe_health(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = lb_name(call.params)?;
    let asked = instance_ids(call, false)?;
    let snapshot = call.api.store.snapshot();
    let lb = snapshot.state.load_balancer(name.as_str())?;
    // As ELB: a named instance's state is returned even when it is not registered (it is out
    // of service); only one that does not exist (no address, not in the inventory) is invalid.
    if let Some(unknown) = asked
        .iter()
        .find(|id| !lb.instances.contains(id) && snapshot.state.instance_address(id).is_none())
    {
        return Err(ApiError::new(
            "InvalidInstance",
            format!("The instance {unknown} is not an IP address and not in the inventory"),
        ));
    }
    let ids = if asked.is_empty() {
        &lb.instances
    } else {
        &asked
    };
    let others = super::fleet::other_nodes(call.api);
    let mut x = answer("DescribeInstanceHealth");
    x.list("InstanceStates", ids, |x, id| {
        let status = if !lb.instances.contains(id) {
            HealthStatus {
                state: HealthState::OutOfService,
                reason_code: "ELB",
                description: "Instance is not currently registered with the LoadBalancer.".into(),
            }
        } else {
            // A registration the data plane has not picked up yet is one in progress.
            call.api
                .data_plane
                .instance_health(&lb.name, id)
                .map(|own| super::fleet::fleet_health(&others, &lb.name, id, own))
                .unwrap_or_else(|| match snapshot.state.instance_address(id) {
                    Some(_) => HealthStatus::registering(),
                    None => HealthStatus::unknown(
                        "The instance is not in the inventory and has no address.",
                    ),
                })
        };
        x.text("InstanceId", id)
            .text("State", status.state.as_str())
            .text("ReasonCode", status.reason_code)
            .text("Description", &status.description);
    });
    Ok(done(x, "DescribeInstanceHealth"))
}
