//! Who may call what (the service layer's rule, `fulcrum_control::access`), and the audit line
//! of every change: only parameters that name resources are logged, never one that carries a
//! secret (a private key, a certificate body, an access-key secret).

use fulcrum_control::access;
pub(crate) use fulcrum_control::access::is_read_only;

use crate::error::ApiError;
use crate::params::Params;

/// Refuses a change asked by a read-only key, in AWS's words.
pub(crate) fn authorize(
    scope: fulcrum_store::KeyScope,
    account: &str,
    service: &str,
    action: &str,
) -> Result<(), ApiError> {
    Ok(access::authorize(scope, account, service, action)?)
}

/// The parameters that name what a change is about, and nothing else.
const RESOURCE_PARAMS: &[&str] = &[
    "LoadBalancerName",
    "LoadBalancerPort",
    "InstancePort",
    "PolicyName",
    "ServerCertificateName",
    "NewServerCertificateName",
    "SSLCertificateId",
    "AccessKeyId",
    "UserName",
    "InstanceId",
];
/// Lists of names, as `Prefix.member.N`.
const RESOURCE_LISTS: &[&str] = &[
    "LoadBalancerNames",
    "Instances",
    "PolicyNames",
    "Listeners",
    "LoadBalancerPorts",
    "Certificates",
];

/// The resources a call names, as `Name=value` pairs for the audit line.
pub(crate) fn resources(params: &Params) -> String {
    let mut out: Vec<String> = RESOURCE_PARAMS
        .iter()
        .filter_map(|p| params.get(p).map(|v| format!("{p}={v}")))
        .collect();
    for list in RESOURCE_LISTS {
        let values = match *list {
            "Instances" => params.member_field(list, "InstanceId").unwrap_or_default(),
            "Certificates" => params
                .member_field(list, "CertificateArn")
                .unwrap_or_default(),
            "Listeners" => params
                .member_field(list, "LoadBalancerPort")
                .unwrap_or_default(),
            _ => params.strings(list).unwrap_or_default(),
        };
        if !values.is_empty() {
            out.push(format!("{list}={}", values.join(",")));
        }
    }
    out.join(" ")
}

/// Logs one change: who, what, on what, and how it ended.
pub(crate) fn audit(
    access_key: &str,
    action: &str,
    params: &Params,
    outcome: &Result<String, ApiError>,
) {
    let outcome = match outcome {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    access::audit(access_key, "api", action, &resources(params), outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_are_audited_never_secrets() {
        let params = Params::parse(
            b"Action=UploadServerCertificate&ServerCertificateName=www\
              &CertificateBody=BODY&PrivateKey=SECRETKEY&CertificateChain=CHAIN\
              &Instances.member.1.InstanceId=i-1&Instances.member.2.InstanceId=10.0.0.2",
        )
        .unwrap();
        let line = resources(&params);
        assert!(line.contains("ServerCertificateName=www"), "{line}");
        assert!(line.contains("Instances=i-1,10.0.0.2"), "{line}");
        for secret in ["BODY", "SECRETKEY", "CHAIN"] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}
