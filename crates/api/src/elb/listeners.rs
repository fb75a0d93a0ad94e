//! CreateLoadBalancerListeners, DeleteLoadBalancerListeners, SetLoadBalancerListenerSSLCertificate.

use super::{answer, done, lb_name, parse_listeners, update};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn create(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = lb_name(call.params)?;
    let snapshot = call.api.store.snapshot();
    let listeners = parse_listeners(call, &snapshot.state)?;
    update(call, |s| {
        s.create_listeners(name.as_str(), listeners.clone())
    })?;
    Ok(done(
        answer("CreateLoadBalancerListeners"),
        "CreateLoadBalancerListeners",
    ))
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = lb_name(call.params)?;
    let ports = ports(call, "LoadBalancerPorts")?;
    update(call, |s| s.delete_listeners(name.as_str(), &ports))?;
    Ok(done(
        answer("DeleteLoadBalancerListeners"),
        "DeleteLoadBalancerListeners",
    ))
}

pub(crate) fn set_certificate(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let name = lb_name(p)?;
    let port = port(p.required("LoadBalancerPort")?)?;
    let reference = p.required("SSLCertificateId")?;
    let snapshot = call.api.store.snapshot();
    let cert = crate::arn::find_certificate(&snapshot.state, &call.api.account, reference)
        .ok_or_else(|| {
            ApiError::from(fulcrum_model::ModelError::CertificateNotFound(
                reference.to_string(),
            ))
        })?;
    let id = cert.id.clone();
    update(call, |s| {
        s.set_listener_certificate(name.as_str(), port, &id)
    })?;
    Ok(done(
        answer("SetLoadBalancerListenerSSLCertificate"),
        "SetLoadBalancerListenerSSLCertificate",
    ))
}

pub(crate) fn port(text: &str) -> Result<u16, ApiError> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ApiError::validation(format!("port '{text}' is not between 1 and 65535")))
}

pub(crate) fn ports(call: &Call<'_>, list: &str) -> Result<Vec<u16>, ApiError> {
    let ports = call.params.strings(list)?;
    if ports.is_empty() {
        return Err(ApiError::validation(format!(
            "{list} must name at least one port"
        )));
    }
    ports.iter().map(|p| port(p)).collect()
}
