//! Access keys: the credentials that sign API calls. Secrets are sealed in the store and shown
//! once, in the answer to CreateAccessKey.

use super::{answer, page};
use crate::error::ApiError;
use crate::time::iso8601;
use crate::xml::{done, Xml};
use crate::Call;

/// fulcrum has one administrator; IAM's user names are accepted and reported as this one.
const USER: &str = "admin";

pub(crate) fn create(call: &Call<'_>) -> Result<Xml, ApiError> {
    let description = call.params.get("UserName").unwrap_or(USER);
    let (id, secret) = call.api.store.create_access_key(description)?;
    let mut x = answer("CreateAccessKey");
    x.open("AccessKey")
        .text("UserName", USER)
        .text("AccessKeyId", &id)
        .text("Status", "Active")
        .text("SecretAccessKey", &secret)
        .text("CreateDate", iso8601(call.now))
        .close("AccessKey");
    Ok(done(x, "CreateAccessKey"))
}

pub(crate) fn list(call: &Call<'_>) -> Result<Xml, ApiError> {
    let mut keys: Vec<_> = call
        .api
        .store
        .list_access_keys()?
        .into_iter()
        .filter(|k| k.active)
        .collect();
    keys.sort_by(|a, b| a.id.cmp(&b.id));
    let keys: Vec<_> = keys.iter().collect();
    let shown = page(call, &keys, |k| k.id.clone())?;
    let mut x = answer("ListAccessKeys");
    x.list("AccessKeyMetadata", &shown.items, |x, k| {
        x.text("UserName", USER)
            .text("AccessKeyId", &k.id)
            .text("Status", "Active")
            .text("CreateDate", iso8601(k.created));
    });
    shown.write_end(&mut x);
    Ok(done(x, "ListAccessKeys"))
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    let id = call.params.required("AccessKeyId")?;
    let active = call.api.store.list_access_keys()?;
    let active: Vec<_> = active.iter().filter(|k| k.active).collect();
    if active.len() == 1 && active[0].id == id {
        return Err(ApiError::new(
            "DeleteConflict",
            "this is the last active access key: create another before deleting it, or no one could call the API",
        ));
    }
    if !call.api.store.revoke_access_key(id)? {
        return Err(ApiError::new(
            "NoSuchEntity",
            format!("The Access Key with id {id} cannot be found."),
        ));
    }
    Ok(done(answer("DeleteAccessKey"), "DeleteAccessKey"))
}
