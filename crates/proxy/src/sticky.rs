//! Sticky sessions: the `AWSELB` cookie and how it is read and written.
//!
//! The cookie value is a MAC of the load balancer's name and the instance id under a key kept
//! sealed in the store, so any node of a fleet, and the same node after a restart, maps it to the
//! same instance without sharing a session table, and a client cannot make up a value that pins
//! it (or a botnet) to an instance of its choice: a value the balancer did not issue names no
//! instance, and the client is balanced afresh.

use aws_lc_rs::hmac;
use fulcrum_model::{InstanceId, LbName};
use http::header::{HeaderMap, COOKIE, SET_COOKIE};
use http::HeaderValue;

pub(crate) const COOKIE_NAME: &str = "AWSELB";

/// The key of the stickiness cookies' MAC; every node that shares a store shares it.
#[derive(Clone)]
pub struct StickinessKey(hmac::Key);

impl StickinessKey {
    pub fn new(bytes: &[u8]) -> Self {
        StickinessKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// A key of this process alone (tests, or a node without a store).
    pub fn random() -> Self {
        StickinessKey::new(&rand::random::<[u8; 32]>())
    }
}

impl std::fmt::Debug for StickinessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StickinessKey(..)")
    }
}

/// The cookie value that names `instance` behind `lb`: 32 hex digits (128 bits of MAC).
pub(crate) fn cookie_value(key: &StickinessKey, lb: &LbName, instance: &InstanceId) -> String {
    let mut ctx = hmac::Context::with_key(&key.0);
    ctx.update(b"fulcrum-sticky\0");
    ctx.update(lb.as_str().as_bytes());
    ctx.update(b"\0");
    ctx.update(instance.as_str().as_bytes());
    hex::encode(&ctx.sign().as_ref()[..16])
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
    fn cookie_values_are_stable_distinct_and_keyed() {
        let key = StickinessKey::new(&[7; 32]);
        let lb = LbName::parse("web").unwrap();
        let a = InstanceId::parse("10.0.0.1").unwrap();
        let b = InstanceId::parse("10.0.0.2").unwrap();
        let value = |key: &StickinessKey, lb: &LbName, i: &InstanceId| cookie_value(key, lb, i);
        assert_eq!(
            value(&key, &lb, &a),
            value(&StickinessKey::new(&[7; 32]), &lb, &a)
        );
        assert_ne!(value(&key, &lb, &a), value(&key, &lb, &b));
        let other = LbName::parse("api").unwrap();
        assert_ne!(value(&key, &lb, &a), value(&key, &other, &a));
        assert_ne!(
            value(&key, &lb, &a),
            value(&StickinessKey::new(&[8; 32]), &lb, &a)
        );
        assert_eq!(value(&key, &lb, &a).len(), 32);
        assert_eq!(format!("{key:?}"), "StickinessKey(..)");
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
