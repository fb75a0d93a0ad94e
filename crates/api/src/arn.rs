//! ARNs and how requests name certificates.

use fulcrum_model::{ServerCertificate, State};

/// `arn:aws:iam::<account>:server-certificate<path><name>`.
pub fn certificate_arn(account: &str, cert: &ServerCertificate) -> String {
    format!(
        "arn:aws:iam::{account}:server-certificate{}{}",
        cert.path, cert.name
    )
}

/// The certificate a `SSLCertificateId` names: its ARN (as ELB expects), or, for people typing
/// by hand, its id or its name.
pub fn find_certificate<'s>(
    state: &'s State,
    account: &str,
    reference: &str,
) -> Option<&'s ServerCertificate> {
    state
        .certificates
        .values()
        .find(|c| certificate_arn(account, c) == reference)
        .or_else(|| state.certificates.get(reference))
        .or_else(|| state.certificate_by_name(reference))
}
