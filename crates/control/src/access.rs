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

impl crate::Control {
    /// The caller whose access key is `key_id`, if `secret` is its secret (compared in time
    /// that does not depend on where they differ); the secret read from the store is wiped.
    pub fn authenticate(&self, key_id: &str, secret: &str) -> Option<Caller> {
        let (expected, scope) = self.store.access_key(key_id).ok().flatten()?;
        let expected = zeroize::Zeroizing::new(expected);
        same_secret(secret.as_bytes(), expected.as_bytes()).then(|| Caller {
            access_key_id: key_id.to_owned(),
            scope,
        })
    }

    /// The scope of an access key that still signs (`None` once revoked); its secret stays
    /// sealed.
    pub fn key_scope(&self, key_id: &str) -> Option<KeyScope> {
        self.store.access_key_scope(key_id).ok().flatten()
    }
}

/// The access-key actions (IAM's `CreateAccessKey`, `ListAccessKeys`, `DeleteAccessKey`):
/// fulcrum's two IAM users are its two scopes, `admin` and `read-only`.
impl crate::Control {
    /// A new key of the user `user` (`None`: admin); returns its id and secret, the only time
    /// the secret leaves the store.
    pub fn create_access_key(
        &self,
        user: Option<&str>,
    ) -> Result<(String, String, KeyScope), ControlError> {
        let scope = scope_of_user(user)?;
        let (id, secret) = self
            .store
            .create_access_key(&format!("{} (CreateAccessKey)", scope.as_str()), scope)?;
        Ok((id, secret, scope))
    }

    /// The active keys, by id; of one user when `user` names one (IAM would take the caller's
    /// user without one; fulcrum lists every active key).
    pub fn access_keys(
        &self,
        user: Option<&str>,
    ) -> Result<Vec<fulcrum_store::AccessKeyInfo>, ControlError> {
        let user = match user {
            None => None,
            some => Some(scope_of_user(some)?),
        };
        let mut keys: Vec<_> = self
            .store
            .list_access_keys()?
            .into_iter()
            .filter(|k| k.active && user.is_none_or(|u| k.scope == u))
            .collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(keys)
    }

    /// Revokes a key; the last admin key stays (or no one could change anything again).
    pub fn delete_access_key(&self, id: &str) -> Result<(), ControlError> {
        match self.store.revoke_access_key(id)? {
            fulcrum_store::Revocation::Revoked => Ok(()),
            fulcrum_store::Revocation::LastAdmin => Err(ControlError::new(
                "DeleteConflict",
                "this is the last active admin access key: create another before deleting it, \
                 or no one could change anything (locked out: `fulcrum key create --data-dir \
                 DIR` on the node)",
            )),
            fulcrum_store::Revocation::NoSuchKey => Err(ControlError::new(
                "NoSuchEntity",
                format!("The Access Key with id {id} cannot be found."),
            )),
        }
    }
}

/// The scope an IAM user name stands for.
fn scope_of_user(user: Option<&str>) -> Result<KeyScope, ControlError> {
    match user {
        None => Ok(KeyScope::Admin),
        Some(name) => KeyScope::parse(name).ok_or_else(|| {
            ControlError::new(
                "NoSuchEntity",
                format!(
                    "The user with name {name} cannot be found. fulcrum's users are its key \
                     scopes: admin and read-only."
                ),
            )
        }),
    }
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
