//! API errors: every failure becomes (AWS error code, HTTP status, message) here and nowhere else.

use fulcrum_control::ControlError;
use fulcrum_model::ModelError;
use fulcrum_store::StoreError;

use crate::xml::escape;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status: status_of(code),
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationError", message)
    }

    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::new("MalformedQueryString", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new("InternalFailure", message)
    }

    /// The AWS error document.
    pub fn to_xml(&self, namespace: &str, request_id: &str) -> String {
        let kind = if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        };
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"#,
            self.code,
            escape(&self.message)
        )
    }
}

/// The HTTP status AWS answers each error code with.
fn status_of(code: &str) -> u16 {
    match code {
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "MissingAuthenticationToken"
        | "AccessDenied" => 403,
        "NoSuchEntity" => 404,
        "MalformedQueryString" => 404,
        "EntityAlreadyExists"
        | "DeleteConflict"
        | "LimitExceeded"
        | "InvalidConfigurationRequest" => 409,
        "RequestEntityTooLarge" => 413,
        "InternalFailure" | "ServiceFailure" => 500,
        "ServiceUnavailable" => 503,
        _ => 400,
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> ApiError {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ControlError::from(e).into()
    }
}

/// The service layer's errors carry AWS's code and words already: only the status is chosen.
impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        ApiError::new(e.code, e.message)
    }
}

impl From<fulcrum_sigv4::AuthError> for ApiError {
    fn from(e: fulcrum_sigv4::AuthError) -> ApiError {
        ApiError {
            code: e.code(),
            status: e.http_status(),
            message: e.to_string(),
        }
    }
}
