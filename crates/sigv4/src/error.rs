//! The ways a request can fail authentication, with the AWS error code, HTTP status and message
//! (the `Display` text) that AWS answers for each.

/// Why a request was refused. `Display` is the message AWS sends in `Error/Message`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor a presigned query string.
    #[error("Request is missing Authentication Token")]
    Missing,
    /// The signature's parts cannot be read: unparsable `Authorization`, a missing component,
    /// an unsupported algorithm, `host` not signed, an unreadable date.
    #[error("{0}")]
    Malformed(String),
    /// The access key id (carried here, for logs) is not known. The message does not repeat it.
    #[error("The security token included in the request is invalid.")]
    UnknownKey(String),
    /// The credential scope names a region, service or date this endpoint does not accept.
    #[error("{0}")]
    WrongScope(String),
    /// The signature does not match the one computed from the request.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method."
    )]
    BadSignature,
    /// The request's date is outside the allowed clock skew, or a presigned URL has expired.
    #[error("{0}")]
    Expired(String),
}

impl AuthError {
    /// The AWS error code (`Error/Code`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationToken",
            AuthError::Malformed(_) => "IncompleteSignature",
            AuthError::UnknownKey(_) => "InvalidClientTokenId",
            AuthError::WrongScope(_) | AuthError::BadSignature => "SignatureDoesNotMatch",
            AuthError::Expired(_) => "RequestExpired",
        }
    }

    /// The HTTP status AWS answers with for [`code`](Self::code).
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::Malformed(_) | AuthError::Expired(_) => 400,
            AuthError::Missing
            | AuthError::UnknownKey(_)
            | AuthError::WrongScope(_)
            | AuthError::BadSignature => 403,
        }
    }
}
