//! Who may change what, and the audit line of every change, for every interface.
//!
//! An access key is `admin` (every action) or `read-only` (the `Describe*`, `List*` and `Get*`
//! actions): IAM's users `admin` and `read-only`. The console signs in with the same keys and
//! asks the same question by the action's AWS name. Every call that may change something is
//! logged once, at `info` under the target `fulcrum::audit`, with the key, the action, the
//! resources it names and the outcome: names only, never a secret (a private key, a
//! certificate body, an access-key secret).

pub use fulcrum_store::KeyScope;

use crate::ControlError;

/// Who makes a call: the access key that signed it (or signed in to the console) and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    pub scope: KeyScope,
}

/// Whether an action only reads.
pub fn is_read_only(action: &str) -> bool {
    ["Describe", "List", "Get"]
        .iter()
        .any(|prefix| action.starts_with(prefix))
}

/// Refuses a change asked by a read-only key, in AWS's words. `service` is the AWS service
/// the action belongs to (`elasticloadbalancing`, `iam`).
pub fn authorize(
    scope: KeyScope,
    account: &str,
    service: &str,
    action: &str,
) -> Result<(), ControlError> {
    if scope == KeyScope::Admin || is_read_only(action) {
        return Ok(());
    }
    Err(ControlError::new(
        "AccessDenied",
        format!(
            "User: arn:aws:iam::{account}:user/{} is not authorized to perform: {service}:{action}",
            scope.as_str()
        ),
    ))
}

/// Logs one change: who, through which interface, what, on what (`Name=value` pairs that name
/// resources, never secrets), and how it ended (`ok` or the error code).
pub fn audit(access_key: &str, via: &str, action: &str, resources: &str, outcome: &str) {
    tracing::info!(
        target: "fulcrum::audit",
        event = "api_change",
        access_key,
        via,
        action,
        resources,
        outcome,
        "audit"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
