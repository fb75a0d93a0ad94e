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

/// One page of a listing, as IAM pages them: `MaxItems` (1–1000, default 100) items after the
/// request's `Marker`. The marker names the last item of the previous page (by its sort key,
/// hex-encoded so that it stays opaque), so a page is right even if items came or went between
/// requests.
pub(crate) struct Page<'a, T> {
    pub(crate) items: Vec<&'a T>,
    next: Option<String>,
}

/// The page of `items`, which must be sorted by `key`.
pub(crate) fn page<'a, T>(
    call: &Call<'_>,
    items: &[&'a T],
    key: impl Fn(&T) -> String,
) -> Result<Page<'a, T>, ApiError> {
    let max: usize = call.params.number("MaxItems")?.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(ApiError::validation("MaxItems must be between 1 and 1000"));
    }
    let after = match call.params.get("Marker") {
        None => None,
        Some(m) => Some(
            hex::decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::validation(format!("Marker '{m}' was not returned by this API"))
                })?,
        ),
    };
    let mut rest = items
        .iter()
        .copied()
        .filter(|t| after.as_ref().is_none_or(|a| key(t) > *a));
    let chosen: Vec<&T> = rest.by_ref().take(max).collect();
    let next = match (rest.next(), chosen.last()) {
        (Some(_), Some(last)) => Some(hex::encode(key(last))),
        _ => None,
    };
    Ok(Page {
        items: chosen,
        next,
    })
}

impl<T> Page<'_, T> {
    /// Writes `IsTruncated` and, when truncated, the `Marker` of the next page.
    pub(crate) fn write_end(&self, x: &mut Xml) {
        x.text("IsTruncated", self.next.is_some());
        if let Some(m) = &self.next {
            x.text("Marker", m);
        }
    }
}
