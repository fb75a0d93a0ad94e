//! ModifyLoadBalancerAttributes and DescribeLoadBalancerAttributes. Connection draining and the
//! idle timeout drive the data plane; cross-zone and access logs are recorded;
//! `fulcrum.balancing` (an additional attribute) picks the algorithm.

use fulcrum_model::{Attributes, Balancing};

use super::{answer, done, lb_name, update};
use crate::error::ApiError;
use crate::params::Params;
use crate::xml::Xml;
use crate::Call;

const PREFIX: &str = "LoadBalancerAttributes.";

pub(crate) fn modify(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let name = lb_name(p)?;
    let current = call
        .api
        .store
        .snapshot()
        .state
        .load_balancer(name.as_str())?
        .attributes
        .clone();
    let attrs = apply(p, current)?;
    let shown = attrs.clone();
    update(call, |s| s.set_attributes(name.as_str(), attrs.clone()))?;
    let mut x = answer("ModifyLoadBalancerAttributes");
    x.text("LoadBalancerName", &name);
    write(&mut x, &shown);
    Ok(done(x, "ModifyLoadBalancerAttributes"))
}

pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = lb_name(call.params)?;
    let snapshot = call.api.store.snapshot();
    let attrs = &snapshot.state.load_balancer(name.as_str())?.attributes;
    let mut x = answer("DescribeLoadBalancerAttributes");
    write(&mut x, attrs);
    Ok(done(x, "DescribeLoadBalancerAttributes"))
}

/// The attributes after the request's changes; attributes the request does not name stay.
fn apply(p: &Params, mut a: Attributes) -> Result<Attributes, ApiError> {
    let key = |k: &str| format!("{PREFIX}{k}");
    if let Some(v) = p.bool(&key("CrossZoneLoadBalancing.Enabled"))? {
        a.cross_zone = v;
    }
    if let Some(v) = p.bool(&key("ConnectionDraining.Enabled"))? {
        a.draining_enabled = v;
    }
    if let Some(v) = p.number(&key("ConnectionDraining.Timeout"))? {
        a.draining_timeout_secs = v;
    }
    if let Some(v) = p.number(&key("ConnectionSettings.IdleTimeout"))? {
        a.idle_timeout_secs = v;
    }
    if let Some(v) = p.bool(&key("AccessLog.Enabled"))? {
        a.access_log.enabled = v;
    }
    if let Some(v) = p.get(&key("AccessLog.S3BucketName")) {
        a.access_log.s3_bucket_name = Some(v.to_owned());
    }
    if let Some(v) = p.number(&key("AccessLog.EmitInterval"))? {
        a.access_log.emit_interval = Some(v);
    }
    if let Some(v) = p.get(&key("AccessLog.S3BucketPrefix")) {
        a.access_log.s3_bucket_prefix = Some(v.to_owned());
    }
    for m in p.members(&key("AdditionalAttributes"))? {
        let k = m.required("Key")?;
        let v = m.get("Value").unwrap_or("");
        match k {
            "fulcrum.balancing" => a.balancing = Some(Balancing::parse(v)?),
            "elb.http.desyncmitigationmode" => a.desync_mitigation_mode = Some(v.to_owned()),
            _ => {
                return Err(ApiError::new(
                    "LoadBalancerAttributeNotFound",
                    format!("{k} is not an attribute fulcrum knows (fulcrum.balancing, elb.http.desyncmitigationmode)"),
                ))
            }
        }
    }
    Ok(a)
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
