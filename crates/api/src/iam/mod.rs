//! IAM: server certificates and access keys.

use crate::error::ApiError;
use crate::Call;

pub(crate) const VERSION: &str = "2010-05-08";

pub(crate) fn dispatch(_call: &Call<'_>, action: &str) -> Result<String, ApiError> {
    Err(ApiError::new(
        "InvalidAction",
        format!("Could not find operation {action} for version {VERSION}"),
    ))
}
