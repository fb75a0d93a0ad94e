//! Sticky sessions: the `AWSELB` cookie and how it is read and written.
//!
//! The cookie value is derived from the load balancer's name and the instance id alone, so any
//! node of a fleet, and the same node after a restart, maps it to the same instance without
//! sharing a session table.

use aws_lc_rs::digest;
use fulcrum_model::{InstanceId, LbName};
use http::header::{HeaderMap, COOKIE, SET_COOKIE};
use http::HeaderValue;

pub(crate) const COOKIE_NAME: &str = "AWSELB";

/// The cookie value that names `instance` behind `lb`: 32 hex digits, opaque to clients.
pub(crate) fn cookie_value(lb: &LbName, instance: &InstanceId) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"fulcrum-sticky\0");
    ctx.update(lb.as_str().as_bytes());
    ctx.update(b"\0");
    ctx.update(instance.as_str().as_bytes());
    hex::encode(&ctx.finish().as_ref()[..16])
}

/// The value of the request cookie `name`, from any `Cookie` header.
pub(crate) fn request_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Whether the response sets the application cookie `name`.
pub(crate) fn response_sets_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split_once('='))
        .any(|(k, _)| k.trim() == name)
}

/// `Set-Cookie` for the balancer's cookie.
pub(crate) fn set_cookie(value: &str, max_age: Option<u64>) -> HeaderValue {
    let header = match max_age {
        Some(secs) => format!("{COOKIE_NAME}={value}; Path=/; Max-Age={secs}"),
        None => format!("{COOKIE_NAME}={value}; Path=/"),
    };
    HeaderValue::try_from(header).expect("hex digits and digits are valid header characters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values_are_stable_and_distinct() {
        let lb = LbName::parse("web").unwrap();
        let a = InstanceId::parse("10.0.0.1").unwrap();
        let b = InstanceId::parse("10.0.0.2").unwrap();
        assert_eq!(cookie_value(&lb, &a), cookie_value(&lb, &a));
        assert_ne!(cookie_value(&lb, &a), cookie_value(&lb, &b));
        let other = LbName::parse("api").unwrap();
        assert_ne!(cookie_value(&lb, &a), cookie_value(&other, &a));
        assert_eq!(cookie_value(&lb, &a).len(), 32);
    }

    #[test]
    fn request_cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; AWSELB=abc"));
        h.append(COOKIE, HeaderValue::from_static("SID=\"xyz\""));
        assert_eq!(request_cookie(&h, "AWSELB"), Some("abc"));
        assert_eq!(request_cookie(&h, "SID"), Some("xyz"));
        assert_eq!(request_cookie(&h, "b"), None);
    }

    #[test]
    fn set_cookie_detection() {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("SID=1; Path=/"));
        assert!(response_sets_cookie(&h, "SID"));
        assert!(!response_sets_cookie(&h, "S"));
        assert_eq!(set_cookie("ab", Some(60)), "AWSELB=ab; Path=/; Max-Age=60");
    }
}
