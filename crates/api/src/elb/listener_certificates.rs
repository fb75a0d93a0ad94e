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

use fulcrum_model::{Listener, ModelError, State};

use super::listeners::port;
use super::{answer, done, lb_name, update};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn add(call: &Call<'_>) -> Result<Xml, ApiError> {
    const ACTION: &str = "AddListenerCertificates";
    let (name, port, references) = listener_and_certificates(call)?;
    let account = &call.api.account;
    let (added, default) = update(call, |s| {
        s.tls_listener(name.as_str(), port)?;
        let ids = resolve(s, account, &references)?;
        s.add_listener_certificates(name.as_str(), port, &ids)?;
        let default = s
            .tls_listener(name.as_str(), port)?
            .certificates
            .first()
            .cloned();
        Ok((ids, default))
    })?;
    let snapshot = call.api.store.snapshot();
    let mut x = answer(ACTION);
    let mut named: Vec<&String> = Vec::new();
    for id in &added {
        if !named.contains(&id) {
            named.push(id);
        }
    }
    x.list("Certificates", named, |x, id| {
        certificate(x, call, &snapshot.state, id, default.as_ref() == Some(id))
    });
    Ok(done(x, ACTION))
}

pub(crate) fn remove(call: &Call<'_>) -> Result<Xml, ApiError> {
    const ACTION: &str = "RemoveListenerCertificates";
    let (name, port, references) = listener_and_certificates(call)?;
    let account = &call.api.account;
    update(call, |s| {
        s.tls_listener(name.as_str(), port)?;
        let ids = resolve(s, account, &references)?;
        s.remove_listener_certificates(name.as_str(), port, &ids)
    })?;
    Ok(done(answer(ACTION), ACTION))
}

pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    const ACTION: &str = "DescribeListenerCertificates";
    let p = call.params;
    let name = lb_name(p)?;
    let port = port(p.required("LoadBalancerPort")?)?;
    let snapshot = call.api.store.snapshot();
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
/// add or a remove, checked.
fn listener_and_certificates(
    call: &Call<'_>,
) -> Result<(fulcrum_model::LbName, u16, Vec<String>), ApiError> {
    let p = call.params;
    let name = lb_name(p)?;
    let port = port(p.required("LoadBalancerPort")?)?;
    let references = p.member_field("Certificates", "CertificateArn")?;
    if references.is_empty() {
        return Err(ApiError::validation(
            "Certificates must name at least one certificate (Certificates.member.N.CertificateArn)",
        ));
    }
    Ok((name, port, references))
}

/// Certificate ids for references (ARNs, or ids and names as `SSLCertificateId` also takes).
fn resolve(state: &State, account: &str, references: &[String]) -> Result<Vec<String>, ModelError> {
    references
        .iter()
        .map(|r| {
            crate::arn::find_certificate(state, account, r)
                .map(|c| c.id.clone())
                .ok_or_else(|| ModelError::CertificateNotFound(r.clone()))
        })
        .collect()
}

/// One `member` of `Certificates`.
fn certificate(x: &mut Xml, call: &Call<'_>, state: &State, id: &str, is_default: bool) {
    if let Some(cert) = state.certificates.get(id) {
        x.text(
            "CertificateArn",
            crate::arn::certificate_arn(&call.api.account, cert),
        );
    }
    x.text("IsDefault", is_default);
}
