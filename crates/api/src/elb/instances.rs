//! ConfigureHealthCheck, RegisterInstancesWithLoadBalancer, DeregisterInstancesFromLoadBalancer,
//! DescribeInstanceHealth.

use fulcrum_control::HealthCheckSpec;
use fulcrum_model::InstanceId;

use super::{answer, done};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn configure_health_check(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let applied = call.ctl.configure_health_check(
        p.required("LoadBalancerName")?,
        HealthCheckSpec {
            target: p.required("HealthCheck.Target")?.to_owned(),
            interval_secs: p.required_number("HealthCheck.Interval")?,
            timeout_secs: p.required_number("HealthCheck.Timeout")?,
            healthy_threshold: p.required_number("HealthCheck.HealthyThreshold")?,
            unhealthy_threshold: p.required_number("HealthCheck.UnhealthyThreshold")?,
        },
    )?;
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

fn instance_ids(call: &Call<'_>) -> Result<Vec<String>, ApiError> {
    call.params.member_field("Instances", "InstanceId")
}

fn instances_answer(action: &str, instances: &[InstanceId]) -> Xml {
    let mut x = answer(action);
    x.list("Instances", instances, |x, id| {
        x.text("InstanceId", id);
    });
    done(x, action)
}

pub(crate) fn register(call: &Call<'_>) -> Result<Xml, ApiError> {
    let now = call.ctl.register_instances(
        call.params.required("LoadBalancerName")?,
        &instance_ids(call)?,
    )?;
    Ok(instances_answer("RegisterInstancesWithLoadBalancer", &now))
}

pub(crate) fn deregister(call: &Call<'_>) -> Result<Xml, ApiError> {
    let now = call.ctl.deregister_instances(
        call.params.required("LoadBalancerName")?,
        &instance_ids(call)?,
    )?;
    Ok(instances_answer(
        "DeregisterInstancesFromLoadBalancer",
        &now,
    ))
}

pub(crate) fn describe_health(call: &Call<'_>) -> Result<Xml, ApiError> {
    let snapshot = call.ctl.snapshot();
    let states = call.ctl.instance_health(
        &snapshot.state,
        call.params.required("LoadBalancerName")?,
        &instance_ids(call)?,
    )?;
    let mut x = answer("DescribeInstanceHealth");
    x.list("InstanceStates", &states, |x, h| {
        x.text("InstanceId", &h.instance)
            .text("State", h.state)
            .text("ReasonCode", h.reason_code)
            .text("Description", &h.description);
    });
    Ok(done(x, "DescribeInstanceHealth"))
}
