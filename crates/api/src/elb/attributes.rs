//! ModifyLoadBalancerAttributes and DescribeLoadBalancerAttributes. Connection draining and the
//! idle timeout drive the data plane; cross-zone and access logs are recorded;
//! `fulcrum.balancing` (an additional attribute) picks the algorithm.

use fulcrum_control::AttributeChanges;
use fulcrum_model::Attributes;

use super::{answer, done, lb_name};
use crate::error::ApiError;
use crate::params::Params;
use crate::xml::Xml;
use crate::Call;

const PREFIX: &str = "LoadBalancerAttributes.";

pub(crate) fn modify(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let name = p.required("LoadBalancerName")?;
    let shown = call.ctl.modify_attributes(name, &changes(p)?)?;
    let mut x = answer("ModifyLoadBalancerAttributes");
    x.text("LoadBalancerName", name);
    write(&mut x, &shown);
    Ok(done(x, "ModifyLoadBalancerAttributes"))
}

pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = lb_name(call.params)?;
    let snapshot = call.ctl.snapshot();
    let attrs = &snapshot.state.load_balancer(name.as_str())?.attributes;
    let mut x = answer("DescribeLoadBalancerAttributes");
    write(&mut x, attrs);
    Ok(done(x, "DescribeLoadBalancerAttributes"))
}

/// The changes a request names.
fn changes(p: &Params) -> Result<AttributeChanges, ApiError> {
    let key = |k: &str| format!("{PREFIX}{k}");
    Ok(AttributeChanges {
        cross_zone: p.bool(&key("CrossZoneLoadBalancing.Enabled"))?,
        draining_enabled: p.bool(&key("ConnectionDraining.Enabled"))?,
        draining_timeout_secs: p.number(&key("ConnectionDraining.Timeout"))?,
        idle_timeout_secs: p.number(&key("ConnectionSettings.IdleTimeout"))?,
        access_log_enabled: p.bool(&key("AccessLog.Enabled"))?,
        access_log_bucket: p.get(&key("AccessLog.S3BucketName")).map(str::to_owned),
        access_log_interval: p.number(&key("AccessLog.EmitInterval"))?,
        access_log_prefix: p.get(&key("AccessLog.S3BucketPrefix")).map(str::to_owned),
        additional: p
            .members(&key("AdditionalAttributes"))?
            .iter()
            .map(|m| {
                Ok((
                    m.required("Key")?.to_owned(),
                    m.get("Value").unwrap_or("").to_owned(),
                ))
            })
            .collect::<Result<_, ApiError>>()?,
    })
}

fn write(x: &mut Xml, a: &Attributes) {
    x.open("LoadBalancerAttributes")
        .open("CrossZoneLoadBalancing")
        .text("Enabled", a.cross_zone)
        .close("CrossZoneLoadBalancing")
        .open("AccessLog")
        .text("Enabled", a.access_log.enabled)
        .opt_text("S3BucketName", a.access_log.s3_bucket_name.as_ref())
        // ELB's default interval, 60 minutes, is shown once logging is on.
        .opt_text(
            "EmitInterval",
            a.access_log
                .emit_interval
                .or(a.access_log.enabled.then_some(60)),
        )
        .opt_text("S3BucketPrefix", a.access_log.s3_bucket_prefix.as_ref())
        .close("AccessLog")
        .open("ConnectionDraining")
        .text("Enabled", a.draining_enabled)
        .text("Timeout", a.draining_timeout_secs)
        .close("ConnectionDraining")
        .open("ConnectionSettings")
        .text("IdleTimeout", a.idle_timeout_secs)
        .close("ConnectionSettings");
    // Only what was set, as ELB lists them.
    let mut additional = Vec::new();
    if let Some(balancing) = a.balancing {
        additional.push(("fulcrum.balancing", balancing.as_str()));
    }
    if let Some(mode) = &a.desync_mitigation_mode {
        additional.push(("elb.http.desyncmitigationmode", mode));
    }
    x.list("AdditionalAttributes", additional, |x, (k, v)| {
        x.text("Key", k).text("Value", v);
    });
    x.close("LoadBalancerAttributes");
}
