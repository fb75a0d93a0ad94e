//! Access keys: the credentials that sign API calls. Secrets are sealed in the store and shown
//! once, in the answer to CreateAccessKey. The rules are the service layer's.

use super::{answer, page};
use crate::error::ApiError;
use crate::time::iso8601;
use crate::xml::{done, Xml};
use crate::Call;

pub(crate) fn create(call: &Call<'_>) -> Result<Xml, ApiError> {
    let (id, secret, scope) = call.ctl.create_access_key(call.params.get("UserName"))?;
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
    let keys = call.ctl.access_keys(call.params.get("UserName"))?;
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
    call.ctl
        .delete_access_key(call.params.required("AccessKeyId")?)?;
    Ok(done(answer("DeleteAccessKey"), "DeleteAccessKey"))
}
