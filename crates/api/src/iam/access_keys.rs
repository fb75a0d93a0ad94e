//! Access keys: the credentials that sign API calls. Secrets are sealed in the store and shown
//! once, in the answer to CreateAccessKey.

use super::{answer, page};
use crate::error::ApiError;
use crate::time::iso8601;
use crate::xml::{done, Xml};
use crate::Call;
use fulcrum_store::{KeyScope, Revocation};

/// fulcrum's two IAM users are its two scopes: `admin` (the default) and `read-only`.
fn scope_of_user(user: Option<&str>) -> Result<KeyScope, ApiError> {
    match user {
        None => Ok(KeyScope::Admin),
        Some(name) => KeyScope::parse(name).ok_or_else(|| {
            ApiError::new(
                "NoSuchEntity",
                format!(
                    "The user with name {name} cannot be found. fulcrum's users are its key \
                     scopes: admin and read-only."
                ),
            )
        }),
    }
}

pub(crate) fn create(call: &Call<'_>) -> Result<Xml, ApiError> {
    let scope = scope_of_user(call.params.get("UserName"))?;
    let (id, secret) = call
        .ctl
        .store
        .create_access_key(&format!("{} (CreateAccessKey)", scope.as_str()), scope)?;
    let mut x = answer("CreateAccessKey");
    x.open("AccessKey")
        .text("UserName", scope.as_str())
        .text("AccessKeyId", &id)
        .text("Status", "Active")
        .text("SecretAccessKey", &secret)
        .text("CreateDate", iso8601(call.now))
        .close("AccessKey");
    Ok(done(x, "CreateAccessKey"))
}

pub(crate) fn list(call: &Call<'_>) -> Result<Xml, ApiError> {
    // A UserName lists that user's keys only, as IAM; without one, fulcrum lists every active
    // key (IAM would take the caller's user).
    let user = match call.params.get("UserName") {
        None => None,
        some => Some(scope_of_user(some)?),
    };
    let mut keys: Vec<_> = call
        .ctl
        .store
        .list_access_keys()?
        .into_iter()
        .filter(|k| k.active && user.is_none_or(|u| k.scope == u))
        .collect();
    keys.sort_by(|a, b| a.id.cmp(&b.id));
    let keys: Vec<_> = keys.iter().collect();
    let shown = page(call, &keys, |k| k.id.clone())?;
    let mut x = answer("ListAccessKeys");
    x.list("AccessKeyMetadata", &shown.items, |x, k| {
        x.text("UserName", k.scope.as_str())
            .text("AccessKeyId", &k.id)
            .text("Status", "Active")
            .text("CreateDate", iso8601(k.created));
    });
    shown.write_end(&mut x);
    Ok(done(x, "ListAccessKeys"))
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    let id = call.params.required("AccessKeyId")?;
    match call.ctl.store.revoke_access_key(id)? {
        Revocation::Revoked => Ok(done(answer("DeleteAccessKey"), "DeleteAccessKey")),
        Revocation::LastAdmin => Err(ApiError::new(
            "DeleteConflict",
            "this is the last active admin access key: create another before deleting it, or \
             no one could change anything (locked out: `fulcrum key create --data-dir DIR` on \
             the node)",
        )),
        Revocation::NoSuchKey => Err(ApiError::new(
            "NoSuchEntity",
            format!("The Access Key with id {id} cannot be found."),
        )),
    }
}
