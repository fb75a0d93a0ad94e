//! CreateLoadBalancerListeners, DeleteLoadBalancerListeners, SetLoadBalancerListenerSSLCertificate.

use super::{answer, done, parse_listeners};
use crate::error::ApiError;
use crate::params::Params;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn create(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    call.ctl
        .create_listeners(p.required("LoadBalancerName")?, &parse_listeners(p)?)?;
    Ok(done(
        answer("CreateLoadBalancerListeners"),
        "CreateLoadBalancerListeners",
    ))
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let ports = p
        .strings("LoadBalancerPorts")?
        .iter()
        .map(|t| number(t))
        .collect::<Result<Vec<_>, _>>()?;
    call.ctl
        .delete_listeners(p.required("LoadBalancerName")?, &ports)?;
    Ok(done(
        answer("DeleteLoadBalancerListeners"),
        "DeleteLoadBalancerListeners",
    ))
}

pub(crate) fn set_certificate(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    call.ctl.set_listener_certificate(
        p.required("LoadBalancerName")?,
        p.required_number("LoadBalancerPort")?,
        p.required("SSLCertificateId")?,
    )?;
    Ok(done(
        answer("SetLoadBalancerListenerSSLCertificate"),
        "SetLoadBalancerListenerSSLCertificate",
    ))
}

/// A port as the API gives it; the service layer checks its range.
fn number(text: &str) -> Result<u32, ApiError> {
    text.parse()
        .map_err(|_| ApiError::validation(format!("port '{text}' is not between 1 and 65535")))
}

/// A port parameter, checked.
pub(crate) fn port(params: &Params, name: &str) -> Result<u16, ApiError> {
    let text = params.required(name)?;
    text.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ApiError::validation(format!("{name} '{text}' is not between 1 and 65535")))
}
