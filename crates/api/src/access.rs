//! Who may call what, and the audit line of every change.
//!
//! An access key is `admin` (every action) or `read-only` (the `Describe*`, `List*` and `Get*`
//! actions): IAM's users `admin` and `read-only`. Every call that may change something is logged
//! once, at `info` under the target `fulcrum::audit`, with the key, the action, the resources it
//! names and the outcome: only parameters that name resources are logged, never one that
//! carries a secret (a private key, a certificate body, an access-key secret).

use fulcrum_store::KeyScope;

use crate::error::ApiError;
use crate::params::Params;

/// Whether an action only reads.
pub(crate) fn is_read_only(action: &str) -> bool {
    ["Describe", "List", "Get"]
        .iter()
        .any(|prefix| action.starts_with(prefix))
}

/// Refuses a change asked by a read-only key, in AWS's words.
pub(crate) fn authorize(
    scope: KeyScope,
    account: &str,
    service: &str,
    action: &str,
) -> Result<(), ApiError> {
    if scope == KeyScope::Admin || is_read_only(action) {
        return Ok(());
    }
    Err(ApiError::new(
        "AccessDenied",
        format!(
            "User: arn:aws:iam::{account}:user/{} is not authorized to perform: {service}:{action}",
            scope.as_str()
        ),
    ))
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
    tracing::info!(
        target: "fulcrum::audit",
        event = "api_change",
        access_key,
        action,
        resources = %resources(params),
        outcome,
        "audit"
    );
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

    #[test]
    fn read_only_keys_read() {
        let ok = |scope, action| authorize(scope, "000000000000", "elasticloadbalancing", action);
        assert!(ok(KeyScope::ReadOnly, "DescribeLoadBalancers").is_ok());
        assert!(ok(KeyScope::ReadOnly, "GetServerCertificate").is_ok());
        let refused = ok(KeyScope::ReadOnly, "CreateLoadBalancer").unwrap_err();
        assert_eq!(refused.code, "AccessDenied");
        assert!(refused
            .message
            .contains("elasticloadbalancing:CreateLoadBalancer"));
        assert!(ok(KeyScope::Admin, "CreateLoadBalancer").is_ok());
    }
}
