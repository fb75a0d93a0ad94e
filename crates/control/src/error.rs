//! The one error of the service layer: an AWS error code, its message in AWS's words, and the
//! request field that caused it when one did (so that the console can show it beside that
//! field). Adapters choose only the transport: the API an HTTP status and document, the console
//! a place on the page.

use fulcrum_model::ModelError;
use fulcrum_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ControlError {
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, named as the AWS API names its parameter
    /// (`LoadBalancerName`, `Listeners.member.2.InstancePort`, `PrivateKey`).
    pub field: Option<String>,
}

impl ControlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ControlError {
        ControlError {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> ControlError {
        ControlError::new("ValidationError", message)
    }

    pub fn invalid_configuration(message: impl Into<String>) -> ControlError {
        ControlError::new("InvalidConfigurationRequest", message)
    }

    /// The same error, blamed on `field` (unless a more precise field was already named).
    pub fn at(mut self, field: impl Into<String>) -> ControlError {
        if self.field.is_none() {
            self.field = Some(field.into());
        }
        self
    }
}

/// Blames the error of a result on a field.
pub(crate) trait At<T> {
    fn at(self, field: &str) -> Result<T, ControlError>;
}

impl<T, E: Into<ControlError>> At<T> for Result<T, E> {
    fn at(self, field: &str) -> Result<T, ControlError> {
        self.map_err(|e| e.into().at(field))
    }
}

impl From<ModelError> for ControlError {
    fn from(e: ModelError) -> ControlError {
        ControlError::new(e.code(), e.to_string())
    }
}

impl From<fulcrum_tls::TlsError> for ControlError {
    fn from(e: fulcrum_tls::TlsError) -> ControlError {
        ControlError::new(e.code(), e.to_string())
    }
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> ControlError {
        match e {
            StoreError::Model(m) => m.into(),
            // The node serves its last snapshot; the SDKs retry ServiceUnavailable.
            StoreError::Unavailable(why) => ControlError::new(
                "ServiceUnavailable",
                format!("the change was not made: {why}"),
            ),
            StoreError::Conflict { .. } => ControlError::new(
                "ServiceUnavailable",
                "other nodes kept changing the state while this change was being made; nothing \
                 was changed; retry",
            ),
            other => {
                tracing::error!(error = %other, "store failure");
                ControlError::new(
                    "ServiceUnavailable",
                    "the state could not be saved; nothing was changed",
                )
            }
        }
    }
}
