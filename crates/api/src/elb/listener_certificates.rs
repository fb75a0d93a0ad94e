//! fulcrum's own actions for the certificates of one HTTPS or SSL listener, shaped like ELBv2's
//! (ELB Classic can only name one, `SSLCertificateId`), with the listener named as ELB Classic
//! names it: `LoadBalancerName` and `LoadBalancerPort`. The first certificate of the list is the
//! default (the listener's `SSLCertificateId`, served when a client's SNI names no certificate
//! of the list, or when it sends none); the others are served to clients whose SNI they match.
//!
//! - `AddListenerCertificates`: `Certificates.member.N.CertificateArn` (an IAM server
//!   certificate's ARN, as `SSLCertificateId` takes) go after those the listener has; one
//!   already there stays (idempotent). Answers with the certificates named, as ELBv2 does.
//! - `RemoveListenerCertificates`: the same parameter; the default certificate is refused
//!   (`SetLoadBalancerListenerSSLCertificate` replaces it), one not in the list is ignored.
//! - `DescribeListenerCertificates`: the whole list, each with `IsDefault`.
//!
//! Answers: `Certificates.member.N.{CertificateArn, IsDefault}`. Errors as ELB's:
//! `LoadBalancerNotFound`, `ListenerNotFound`, `InvalidConfigurationRequest` (not a TLS
//! listener, or the default certificate), `CertificateNotFound`.

use fulcrum_model::{Listener, State};

use super::listeners::port;
use super::{answer, done, lb_name};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn add(call: &Call<'_>) -> Result<Xml, ApiError> {
    const ACTION: &str = "AddListenerCertificates";
    let (name, lb_port, references) = request(call)?;
    let (added, default) = call
        .ctl
        .add_listener_certificates(name, lb_port, &references)?;
    let snapshot = call.ctl.snapshot();
    let mut x = answer(ACTION);
    x.list("Certificates", &added, |x, id| {
        certificate(x, call, &snapshot.state, id, default.as_ref() == Some(id))
    });
    Ok(done(x, ACTION))
}

pub(crate) fn remove(call: &Call<'_>) -> Result<Xml, ApiError> {
    const ACTION: &str = "RemoveListenerCertificates";
    let (name, lb_port, references) = request(call)?;
    call.ctl
        .remove_listener_certificates(name, lb_port, &references)?;
    Ok(done(answer(ACTION), ACTION))
}

pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    const ACTION: &str = "DescribeListenerCertificates";
    let p = call.params;
    let name = lb_name(p)?;
    let port = port(p, "LoadBalancerPort")?;
    let snapshot = call.ctl.snapshot();
    let listener: &Listener = snapshot.state.tls_listener(name.as_str(), port)?;
    let mut x = answer(ACTION);
    x.list(
        "Certificates",
        listener.certificates.iter().enumerate(),
        |x, (i, id)| certificate(x, call, &snapshot.state, id, i == 0),
    );
    Ok(done(x, ACTION))
}

/// The listener (`LoadBalancerName`, `LoadBalancerPort`) and the certificate references of an
/// add or a remove.
fn request<'c>(call: &'c Call<'_>) -> Result<(&'c str, u32, Vec<String>), ApiError> {
    let p = call.params;
    Ok((
        p.required("LoadBalancerName")?,
        p.required_number("LoadBalancerPort")?,
        p.member_field("Certificates", "CertificateArn")?,
    ))
}

/// One `member` of `Certificates`.
fn certificate(x: &mut Xml, call: &Call<'_>, state: &State, id: &str, is_default: bool) {
    if let Some(cert) = state.certificates.get(id) {
        x.text("CertificateArn", call.ctl.certificate_arn(cert));
    }
    x.text("IsDefault", is_default);
}
