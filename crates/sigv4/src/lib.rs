//! AWS Signature Version 4 for fulcrum's control API: [`verify`] checks a request signed by the
//! aws CLI, boto3 or an AWS SDK (with the `Authorization` header or presigned in the query
//! string); [`sign`] signs one for fulcrum's own CLI.
//!
//! The canonicalization is AWS's for every service but S3: the path is normalized and encoded
//! again, the query re-encoded and sorted, header values trimmed, the payload hashed.
//! Verification checks the credential scope (service, region, date), a clock skew of at most
//! [`MAX_SKEW`], the expiry of presigned URLs, and compares signatures in constant time.

mod canonical;
mod date;
mod error;
mod sign;
mod verify;

use std::time::{Duration, SystemTime};

pub use canonical::ALGORITHM;
pub use error::AuthError;

/// The largest difference allowed between the request's date and the verifier's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The largest `X-Amz-Expires` a presigned URL may have: a week.
pub const MAX_PRESIGNED_EXPIRES: Duration = Duration::from_secs(604_800);

/// What the verifier needs from an HTTP request. `body` is the raw bytes as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a http::Method,
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// The identity and scope of a request whose signature was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    /// The request's `X-Amz-Date` (or `Date`).
    pub signed_at: SystemTime,
}

/// Verifies a request signed with the `Authorization` header (`AWS4-HMAC-SHA256`) or presigned
/// in the query string (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`
/// (at most [`MAX_PRESIGNED_EXPIRES`]), `X-Amz-SignedHeaders`, `X-Amz-Signature`).
///
/// `secret_for` looks up an access key's secret (`None`: unknown key); it is called only once the
/// request is well formed, in scope and on time. `services` are the service names this endpoint
/// accepts in the credential scope; `region` is the region it accepts, and for the global service
/// `iam` also `us-east-1`, which the SDKs sign IAM for. `now` is the verifier's clock.
pub fn verify(
    req: &SignedRequest<'_>,
    region: &str,
    services: &[&str],
    now: SystemTime,
    secret_for: impl FnOnce(&str) -> Option<String>,
) -> Result<Verified, AuthError> {
    verify::verify(req, region, services, now, secret_for)
}

/// Signs a request with the `Authorization` header: sets `x-amz-date`, adds `host` from the URI's
/// authority when missing, and signs `host`, `x-amz-date` and `content-type` (when present). The
/// body is hashed into the signature; no `x-amz-content-sha256` is added. Fails only on a URI
/// without a host or on names that cannot be part of a credential.
pub fn sign(
    req: &mut http::Request<Vec<u8>>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: SystemTime,
) -> Result<(), AuthError> {
    sign::sign(req, access_key_id, secret, region, service, now)
}
