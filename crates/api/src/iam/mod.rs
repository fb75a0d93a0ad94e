//! IAM `2010-05-08`: server certificates (the seed's `upload-server-certificate`) and the access
//! keys that sign API calls.

mod access_keys;
mod certificates;

use crate::error::ApiError;
use crate::xml::Xml;
use crate::{Call, IAM_NAMESPACE};

pub(crate) const VERSION: &str = "2010-05-08";

pub(crate) fn dispatch(call: &Call<'_>, action: &str) -> Result<String, ApiError> {
    if let Some(v) = call.params.get("Version") {
        if v != VERSION {
            return Err(ApiError::new(
                "InvalidAction",
                format!("IAM speaks version {VERSION}, not {v}"),
            ));
        }
    }
    let result = match action {
        "UploadServerCertificate" => certificates::upload(call),
        "GetServerCertificate" => certificates::get(call),
        "ListServerCertificates" => certificates::list(call),
        "UpdateServerCertificate" => certificates::update_certificate(call),
        "DeleteServerCertificate" => certificates::delete(call),
        "TagServerCertificate" => certificates::tag(call),
        "UntagServerCertificate" => certificates::untag(call),
        "ListServerCertificateTags" => certificates::list_tags(call),
        "CreateAccessKey" => access_keys::create(call),
        "ListAccessKeys" => access_keys::list(call),
        "DeleteAccessKey" => access_keys::delete(call),
        _ => Err(ApiError::new(
            "InvalidAction",
            format!("Could not find operation {action} for version {VERSION}"),
        )),
    }?;
    Ok(result.finish(action, call.request_id))
}

pub(crate) fn answer(action: &str) -> Xml {
    Xml::result(action, IAM_NAMESPACE)
}

/// IAM's `MaxItems` (1–1000, default 100) and `Marker` (an opaque position: here, an index).
pub(crate) fn page(call: &Call<'_>) -> Result<(usize, usize), ApiError> {
    let max: usize = call.params.number("MaxItems")?.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(ApiError::validation("MaxItems must be between 1 and 1000"));
    }
    let start = match call.params.get("Marker") {
        None => 0,
        Some(m) => m.parse().map_err(|_| {
            ApiError::validation(format!("Marker '{m}' was not returned by this API"))
        })?,
    };
    Ok((start, max))
}

/// Writes `IsTruncated` and, when truncated, the `Marker` of the next page.
pub(crate) fn page_end(x: &mut Xml, start: usize, shown: usize, total: usize) {
    let next = start + shown;
    x.text("IsTruncated", next < total);
    if next < total {
        x.text("Marker", next);
    }
}
