//! Signing, for fulcrum's own CLI: the `Authorization` header form, signing `host`,
//! `x-amz-date` and `content-type` (when present), as the AWS SDKs would for the same request.

use std::time::SystemTime;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Request};

use crate::canonical::{self, CanonicalRequest, ALGORITHM};
use crate::date::format_amz;
use crate::AuthError;

const X_AMZ_DATE: &str = "x-amz-date";

pub(crate) fn sign(
    req: &mut Request<Vec<u8>>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: SystemTime,
) -> Result<(), AuthError> {
    for (what, value) in [
        ("access key id", access_key_id),
        ("region", region),
        ("service", service),
    ] {
        if value.is_empty()
            || value
                .bytes()
                .any(|b| !b.is_ascii_graphic() || b == b'/' || b == b',')
        {
            return Err(AuthError::Malformed(format!(
                "cannot sign with the {what} '{value}'"
            )));
        }
    }
    let amz_date = format_amz(now);
    let headers = req.headers_mut();
    headers.remove(AUTHORIZATION);
    headers.insert(
        X_AMZ_DATE,
        HeaderValue::from_str(&amz_date).map_err(|_| AuthError::Malformed(amz_date.clone()))?,
    );
    if !req.headers().contains_key(HOST) {
        let host = host_of(req.uri()).ok_or_else(|| {
            AuthError::Malformed("cannot sign a request whose URI has no host".to_owned())
        })?;
        let host = HeaderValue::from_str(&host)
            .map_err(|_| AuthError::Malformed(format!("invalid host '{host}'")))?;
        req.headers_mut().insert(HOST, host);
    }

    let mut names: Vec<&str> = vec![HOST.as_str(), X_AMZ_DATE];
    if req.headers().contains_key(CONTENT_TYPE) {
        names.push(CONTENT_TYPE.as_str());
    }
    names.sort_unstable();
    let signed_headers = names.join(";");
    let headers = names
        .iter()
        .map(|&name| {
            let values = req
                .headers()
                .get_all(name)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect();
            (name, values)
        })
        .collect();
    let payload_hash = canonical::sha256_hex(req.body());
    let creq = CanonicalRequest {
        method: req.method().as_str(),
        uri: canonical::canonical_uri(req.uri().path()),
        query: canonical::canonical_query(req.uri().query(), None),
        headers,
        signed_headers: &signed_headers,
        payload_hash: &payload_hash,
    };
    let date = &amz_date[..8];
    let scope = canonical::scope(date, region, service);
    let sts = canonical::string_to_sign(&amz_date, &scope, &creq.to_bytes());
    let signature = hex::encode(canonical::signature(secret, date, region, service, &sts));
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    );
    let authorization = HeaderValue::from_str(&authorization)
        .map_err(|_| AuthError::Malformed("the Authorization header is not valid".to_owned()))?;
    req.headers_mut().insert(AUTHORIZATION, authorization);
    Ok(())
}

/// The `Host` a client sends for a URI: its authority, without the port when it is the
/// scheme's default (as hyper and the AWS SDKs do).
fn host_of(uri: &http::Uri) -> Option<String> {
    let authority = uri.authority()?;
    let default_port = matches!(
        (uri.scheme_str(), authority.port_u16()),
        (Some("http"), Some(80)) | (Some("https"), Some(443))
    );
    Some(if default_port {
        authority.host().to_owned()
    } else {
        authority.as_str().to_owned()
    })
}
