//! Verification of a signed request: the `Authorization` header form and the presigned query
//! string form. Checks in this order, each failing with its own [`AuthError`]: presence,
//! syntax, scope (service, region, date), clock, key, signature.

use std::time::{Duration, SystemTime};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use http::header::{AUTHORIZATION, DATE, HOST};
use zeroize::Zeroizing;

use crate::canonical::{
    self, CanonicalRequest, HeaderValues, ALGORITHM, TERMINATOR, UNSIGNED_PAYLOAD,
};
use crate::date::{format_amz, parse_amz, parse_http_date};
use crate::{AuthError, SignedRequest, Verified, MAX_PRESIGNED_EXPIRES, MAX_SKEW};

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const Q_ALGORITHM: &str = "X-Amz-Algorithm";
const Q_CREDENTIAL: &str = "X-Amz-Credential";
const Q_DATE: &str = "X-Amz-Date";
const Q_EXPIRES: &str = "X-Amz-Expires";
const Q_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
const Q_SIGNATURE: &str = "X-Amz-Signature";

fn malformed(msg: impl Into<String>) -> AuthError {
    AuthError::Malformed(msg.into())
}

/// What the signature claims, from the header or the query string.
struct Claim {
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
    signed_headers: String,
    signature: Vec<u8>,
    /// `X-Amz-Date` (or the `Date` header, reformatted), as it enters the string to sign.
    amz_date: String,
    signed_at: SystemTime,
    /// `X-Amz-Expires` of a presigned URL.
    expires: Option<Duration>,
    presigned: bool,
}

pub(crate) fn verify(
    req: &SignedRequest<'_>,
    region: &str,
    services: &[&str],
    now: SystemTime,
    secret_for: impl FnOnce(&str) -> Option<String>,
) -> Result<Verified, AuthError> {
    let query = req.uri.query();
    let presigned = query.is_some_and(|q| {
        canonical::query_pairs(q).any(|(name, _)| {
            [Q_ALGORITHM, Q_CREDENTIAL, Q_SIGNATURE]
                .iter()
                .any(|p| name == p.as_bytes())
        })
    });
    let mut auth_headers = req.headers.get_all(AUTHORIZATION).iter();
    let claim = match (auth_headers.next(), presigned) {
        (None, false) => return Err(AuthError::Missing),
        (Some(_), true) => {
            return Err(malformed(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter \
                 or the Authorization header should be specified",
            ))
        }
        (Some(value), false) => {
            if auth_headers.next().is_some() {
                return Err(malformed("Only one Authorization header is allowed"));
            }
            let value = value
                .to_str()
                .map_err(|_| malformed("Authorization header is not ASCII"))?;
            claim_from_header(value, req.headers)?
        }
        (None, true) => claim_from_query(query.unwrap_or_default())?,
    };

    check_scope(&claim, region, services)?;
    check_time(&claim, now)?;

    // The secret is wiped once the signature is checked.
    let secret = secret_for(&claim.access_key_id)
        .map(Zeroizing::new)
        .ok_or_else(|| AuthError::UnknownKey(claim.access_key_id.clone()))?;

    let headers = signed_header_values(req, &claim.signed_headers)?;
    let uri = canonical::canonical_uri(req.uri.path());
    let canonical_query = canonical::canonical_query(
        query,
        if claim.presigned {
            Some(Q_SIGNATURE)
        } else {
            None
        },
    );
    let payload_hashes = payload_hashes(req, claim.presigned)?;
    let mut matched = false;
    for (headers, payload_hash) in headers
        .iter()
        .flat_map(|h| payload_hashes.iter().map(move |p| (h, p)))
    {
        let creq = CanonicalRequest {
            method: req.method.as_str(),
            uri: uri.clone(),
            query: canonical_query.clone(),
            headers: headers.clone(),
            signed_headers: &claim.signed_headers,
            payload_hash,
        };
        let scope = canonical::scope(&claim.scope_date, &claim.region, &claim.service);
        let sts = canonical::string_to_sign(&claim.amz_date, &scope, &creq.to_bytes());
        let expected = canonical::signature(
            &secret,
            &claim.scope_date,
            &claim.region,
            &claim.service,
            &sts,
        );
        // Evaluate every candidate, so the time taken does not depend on which one matched.
        matched |= verify_slices_are_equal(&expected, &claim.signature).is_ok();
    }
    if !matched {
        return Err(AuthError::BadSignature);
    }
    Ok(Verified {
        access_key_id: claim.access_key_id,
        region: claim.region,
        service: claim.service,
        signed_at: claim.signed_at,
    })
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=<64 hex>` and finds the request's date.
fn claim_from_header(value: &str, headers: &http::HeaderMap) -> Result<Claim, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(malformed(format!(
            "Unsupported AWS 'algorithm': '{}'. Only {ALGORITHM} is supported. Authorization={}",
            truncate(algorithm),
            truncate(value)
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(malformed(format!(
                "'{}' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                truncate(part),
                truncate(value)
            )));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(val.trim()).is_some() {
            return Err(malformed(format!(
                "Authorization header has '{}' more than once.",
                key.trim()
            )));
        }
    }
    let mut missing = String::new();
    for (present, name) in [
        (credential.is_some(), "Credential"),
        (signature.is_some(), "Signature"),
        (signed_headers.is_some(), "SignedHeaders"),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(malformed(format!(
            "{missing}Authorization={}",
            truncate(value)
        )));
    };

    let (amz_date, signed_at) = match headers.get(X_AMZ_DATE) {
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| malformed("X-Amz-Date header is not ASCII"))?;
            let t = parse_amz(s).ok_or_else(|| {
                malformed(format!(
                    "Invalid X-Amz-Date '{}': the format is YYYYMMDD'T'HHMMSS'Z'",
                    truncate(s)
                ))
            })?;
            (s.to_owned(), t)
        }
        None => match headers.get(DATE) {
            Some(v) => {
                let t = v.to_str().ok().and_then(parse_http_date).ok_or_else(|| {
                    malformed("Invalid Date header: the format is RFC 1123 (Sun, 06 Nov 1994 08:49:37 GMT)")
                })?;
                (format_amz(t), t)
            }
            None => {
                return Err(malformed(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
                ))
            }
        },
    };
    build_claim(
        credential,
        signed_headers,
        signature,
        amz_date,
        signed_at,
        None,
        false,
    )
}

/// Reads the `X-Amz-*` parameters of a presigned URL.
fn claim_from_query(query: &str) -> Result<Claim, AuthError> {
    let mut params: [(&str, Option<String>); 6] = [
        (Q_ALGORITHM, None),
        (Q_CREDENTIAL, None),
        (Q_DATE, None),
        (Q_EXPIRES, None),
        (Q_SIGNED_HEADERS, None),
        (Q_SIGNATURE, None),
    ];
    for (name, value) in canonical::query_pairs(query) {
        let Some((pname, slot)) = params
            .iter_mut()
            .find(|(p, _)| name == p.as_bytes())
            .map(|(p, slot)| (*p, slot))
        else {
            continue;
        };
        let value = String::from_utf8(value)
            .map_err(|_| malformed(format!("{pname} is not valid UTF-8")))?;
        if slot.replace(value).is_some() {
            return Err(malformed(format!("{pname} appears more than once")));
        }
    }
    let [(_, algorithm), (_, credential), (_, date), (_, expires), (_, signed_headers), (_, signature)] =
        params;
    let mut missing = Vec::new();
    for (present, name) in [
        (algorithm.is_some(), Q_ALGORITHM),
        (credential.is_some(), Q_CREDENTIAL),
        (date.is_some(), Q_DATE),
        (signed_headers.is_some(), Q_SIGNED_HEADERS),
        (signature.is_some(), Q_SIGNATURE),
    ] {
        if !present {
            missing.push(name);
        }
    }
    let (Some(algorithm), Some(credential), Some(date), Some(signed_headers), Some(signature)) =
        (algorithm, credential, date, signed_headers, signature)
    else {
        return Err(malformed(format!(
            "Query-string authentication requires the {} parameters",
            missing.join(", ")
        )));
    };
    if algorithm != ALGORITHM {
        return Err(malformed(format!(
            "Unsupported X-Amz-Algorithm '{}'. Only {ALGORITHM} is supported.",
            truncate(&algorithm)
        )));
    }
    let signed_at = parse_amz(&date).ok_or_else(|| {
        malformed(format!(
            "Invalid X-Amz-Date '{}': the format is YYYYMMDD'T'HHMMSS'Z'",
            truncate(&date)
        ))
    })?;
    let expires = match expires {
        None => None,
        Some(e) => {
            let secs: u64 = e
                .parse()
                .ok()
                .filter(|s| *s >= 1 && e.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    malformed(format!(
                        "X-Amz-Expires should be a number of seconds, not '{}'",
                        truncate(&e)
                    ))
                })?;
            if secs > MAX_PRESIGNED_EXPIRES.as_secs() {
                return Err(malformed(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {}",
                    MAX_PRESIGNED_EXPIRES.as_secs()
                )));
            }
            Some(Duration::from_secs(secs))
        }
    };
    build_claim(
        &credential,
        &signed_headers,
        &signature,
        date,
        signed_at,
        expires,
        true,
    )
}

fn build_claim(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: String,
    signed_at: SystemTime,
    expires: Option<Duration>,
    presigned: bool,
) -> Result<Claim, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
        return Err(malformed(format!(
            "Credential should have the form <access key id>/<YYYYMMDD>/<region>/<service>/{TERMINATOR}, not '{}'.",
            truncate(credential)
        )));
    };
    if terminator != TERMINATOR {
        return Err(malformed(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            truncate(terminator)
        )));
    }
    if access_key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed(format!(
            "Credential has an empty component: '{}'.",
            truncate(credential)
        )));
    }
    if scope_date.len() != 8 || !scope_date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!(
            "Credential should be scoped to a date in the format YYYYMMDD, not '{}'.",
            truncate(scope_date)
        )));
    }
    if signed_headers.is_empty()
        || signed_headers.split(';').any(|h| {
            h.is_empty()
                || !h.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
                })
        })
    {
        return Err(malformed(format!(
            "SignedHeaders should be a ';'-separated list of lower-case header names, not '{}'.",
            truncate(signed_headers)
        )));
    }
    if !signed_headers.split(';').any(|h| h == "host") {
        return Err(malformed(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    let signature = if signature.len() == 64 {
        hex::decode(signature).ok()
    } else {
        None
    }
    .ok_or_else(|| {
        malformed(format!(
            "Signature should be 64 hexadecimal characters, not '{}'.",
            truncate(signature)
        ))
    })?;
    Ok(Claim {
        access_key_id: access_key_id.to_owned(),
        scope_date: scope_date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: signed_headers.to_owned(),
        signature,
        amz_date,
        signed_at,
        expires,
        presigned,
    })
}

fn check_scope(claim: &Claim, region: &str, services: &[&str]) -> Result<(), AuthError> {
    if !services.contains(&claim.service.as_str()) {
        let expected: Vec<String> = services.iter().map(|s| format!("'{s}'")).collect();
        return Err(AuthError::WrongScope(format!(
            "Credential should be scoped to correct service: {}, not '{}'. ",
            expected.join(" or "),
            truncate(&claim.service)
        )));
    }
    let global = claim.service == "iam" && claim.region == "us-east-1";
    if claim.region != region && !global {
        return Err(AuthError::WrongScope(format!(
            "Credential should be scoped to a valid region, not '{}'. This endpoint serves '{region}'.",
            truncate(&claim.region)
        )));
    }
    let amz_day = claim.amz_date.get(..8).unwrap_or_default();
    if claim.scope_date != amz_day {
        return Err(AuthError::WrongScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            claim.scope_date,
            amz_day,
            if claim.presigned { Q_DATE } else { "X-Amz-Date" }
        )));
    }
    Ok(())
}

fn check_time(claim: &Claim, now: SystemTime) -> Result<(), AuthError> {
    let at = claim.signed_at;
    if let Ok(ahead) = at.duration_since(now) {
        if ahead > MAX_SKEW {
            return Err(AuthError::Expired(format!(
                "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                claim.amz_date,
                now.checked_add(MAX_SKEW)
                    .map(format_amz)
                    .unwrap_or_default(),
                format_amz(now)
            )));
        }
    }
    match claim.expires {
        Some(expires) => {
            let expired = match at.checked_add(expires) {
                Some(end) => now > end,
                None => true,
            };
            if expired {
                return Err(AuthError::Expired("Request has expired.".to_owned()));
            }
        }
        None => {
            if let Ok(behind) = now.duration_since(at) {
                if behind > MAX_SKEW {
                    return Err(AuthError::Expired(format!(
                        "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                        claim.amz_date,
                        now.checked_sub(MAX_SKEW)
                            .map(format_amz)
                            .unwrap_or_default(),
                        format_amz(now)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The values of each signed header, in the order of `SignedHeaders`, once for each value the
/// client may have signed for `host`. Without a `Host` header (HTTP/2 puts `:authority` in the
/// URI) `host` is the URI's authority; when that carries the scheme's default port, the SDKs
/// signed it without the port (and older ones with it), so both are tried.
fn signed_header_values<'a>(
    req: &SignedRequest<'a>,
    signed_headers: &'a str,
) -> Result<Vec<Vec<HeaderValues<'a>>>, AuthError> {
    let mut headers = Vec::new();
    let mut host_at = None;
    for name in signed_headers.split(';') {
        let values: Vec<&'a [u8]> = req
            .headers
            .get_all(name)
            .iter()
            .map(http::HeaderValue::as_bytes)
            .collect();
        if values.is_empty() && name == HOST.as_str() {
            host_at = Some(headers.len());
        }
        headers.push((name, values));
    }
    let Some(at) = host_at else {
        return Ok(vec![headers]);
    };
    let authority = req
        .uri
        .authority()
        .ok_or_else(|| malformed("The request has neither a Host header nor an authority"))?;
    let default_port = matches!(
        (req.uri.scheme_str(), authority.port_u16()),
        (Some("http"), Some(80)) | (Some("https"), Some(443))
    );
    let mut hosts = Vec::new();
    if default_port {
        hosts.push(authority.host().as_bytes());
    }
    hosts.push(authority.as_str().as_bytes());
    Ok(hosts
        .into_iter()
        .map(|host| {
            let mut h = headers.clone();
            h[at].1 = vec![host];
            h
        })
        .collect())
}

/// The payload hashes the client may have signed: the body's SHA-256 (which an
/// `x-amz-content-sha256` header must then equal), or, for a presigned URL without a body,
/// `UNSIGNED-PAYLOAD`. A body is never accepted unsigned.
fn payload_hashes(req: &SignedRequest<'_>, presigned: bool) -> Result<Vec<String>, AuthError> {
    let body_hash = canonical::sha256_hex(req.body);
    match req.headers.get(X_AMZ_CONTENT_SHA256) {
        Some(declared) => {
            let declared = declared.as_bytes();
            if declared.eq_ignore_ascii_case(body_hash.as_bytes()) {
                Ok(vec![String::from_utf8_lossy(declared).into_owned()])
            } else if declared == UNSIGNED_PAYLOAD.as_bytes() && req.body.is_empty() {
                Ok(vec![UNSIGNED_PAYLOAD.to_owned()])
            } else {
                Err(AuthError::BadSignature)
            }
        }
        None if presigned && req.body.is_empty() => {
            Ok(vec![body_hash, UNSIGNED_PAYLOAD.to_owned()])
        }
        None => Ok(vec![body_hash]),
    }
}

/// A client-supplied string cut for an error message.
fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
