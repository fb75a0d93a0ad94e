//! Names and identifiers, parsed once at the edge so that the rest of fulcrum holds only valid ones.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{validation, ModelError};

/// A load balancer name: 1–32 ASCII letters, digits and hyphens, not starting or ending with a hyphen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LbName(String);

impl LbName {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let ok_chars = s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if s.is_empty() || s.len() > 32 || !ok_chars || s.starts_with('-') || s.ends_with('-') {
            return Err(validation(format!(
                "LoadBalancerName '{s}' is invalid: it must have 1 to 32 characters, only letters, \
                 digits and hyphens, and must not begin or end with a hyphen"
            )));
        }
        Ok(LbName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LbName {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        LbName::parse(&s)
    }
}

impl From<LbName> for String {
    fn from(n: LbName) -> String {
        n.0
    }
}

impl fmt::Display for LbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An instance as registered with a load balancer: an id from fulcrum's inventory (`i-...`, or any
/// name of letters, digits, `-`, `_`, `.`), or a literal IPv4/IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceId(String);

impl InstanceId {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let s = s.trim();
        if s.parse::<IpAddr>().is_ok() {
            return Ok(InstanceId(s.to_owned()));
        }
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if s.is_empty() || s.len() > 64 || !ok_chars {
            return Err(ModelError::InvalidInstance(format!(
                "'{s}' is neither an IP address nor a valid instance id \
                 (1 to 64 letters, digits, '-', '_' or '.')"
            )));
        }
        Ok(InstanceId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address when the id is a literal IP address.
    pub fn literal_address(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }
}

impl TryFrom<String> for InstanceId {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        InstanceId::parse(&s)
    }
}

impl From<InstanceId> for String {
    fn from(n: InstanceId) -> String {
        n.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A policy name: 1–255 letters, digits, `-` and `_` (what ELB accepts).
pub fn check_policy_name(s: &str) -> Result<(), ModelError> {
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if s.is_empty() || s.len() > 255 || !ok_chars {
        return Err(validation(format!(
            "PolicyName '{s}' is invalid: 1 to 255 letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

/// A server certificate name: 1–128 characters of `[\w+=,.@-]` (IAM's rule).
pub fn check_certificate_name(s: &str) -> Result<(), ModelError> {
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if s.is_empty() || s.len() > 128 || !ok_chars {
        return Err(validation(format!(
            "ServerCertificateName '{s}' is invalid: 1 to 128 letters, digits or any of _+=,.@-"
        )));
    }
    Ok(())
}

/// An IAM path: `/`, or `/` followed by segments, ending in `/`, at most 512 characters.
pub fn check_iam_path(s: &str) -> Result<(), ModelError> {
    let ok_chars = s.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if s.is_empty() || s.len() > 512 || !s.starts_with('/') || !s.ends_with('/') || !ok_chars {
        return Err(validation(format!(
            "Path '{s}' is invalid: it must begin and end with '/' and hold printable ASCII only"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lb_names_follow_elb_rules() {
        for ok in ["a", "web", "my-lb-1", "A1", &"x".repeat(32)] {
            assert!(LbName::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", "é", &"x".repeat(33), "a b"] {
            let err = LbName::parse(bad).unwrap_err();
            assert_eq!(err.code(), "ValidationError", "{bad}");
        }
    }

    #[test]
    fn instance_ids_are_inventory_ids_or_addresses() {
        assert_eq!(
            InstanceId::parse("10.0.0.5").unwrap().literal_address(),
            Some("10.0.0.5".parse().unwrap())
        );
        assert!(InstanceId::parse("::1")
            .unwrap()
            .literal_address()
            .is_some());
        assert!(InstanceId::parse("i-0abc123")
            .unwrap()
            .literal_address()
            .is_none());
        for bad in ["", "a b", "i/x", &"i".repeat(65)] {
            assert_eq!(
                InstanceId::parse(bad).unwrap_err().code(),
                "InvalidInstance",
                "{bad}"
            );
        }
    }

    #[test]
    fn names_and_paths() {
        assert!(check_policy_name("my-policy_1").is_ok());
        assert!(check_policy_name("bad name").is_err());
        assert!(check_policy_name("").is_err());
        assert!(check_certificate_name("www.example.com+2024@x").is_ok());
        assert!(check_certificate_name("a/b").is_err());
        assert!(check_iam_path("/").is_ok());
        assert!(check_iam_path("/cloudfront/prod/").is_ok());
        assert!(check_iam_path("/x").is_err());
        assert!(check_iam_path("x/").is_err());
    }
}
