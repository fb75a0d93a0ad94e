//! Policies and attributes of a load balancer: stickiness, and the knobs ELB calls attributes.

use serde::{Deserialize, Serialize};

use crate::error::{validation, ModelError};

/// A named policy of one load balancer; listeners refer to it by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub kind: PolicyKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PolicyKind {
    /// The balancer issues its own `AWSELB` cookie; `None` lasts for the browser session.
    LbCookieStickiness { expiration_secs: Option<u64> },
    /// The balancer follows the application's cookie of this name.
    AppCookieStickiness { cookie_name: String },
    /// Any other policy type, kept with its attributes as given (`PolicyTypeName`, attributes).
    Other {
        type_name: String,
        attributes: Vec<(String, String)>,
    },
}

impl PolicyKind {
    /// ELB's policy type name.
    pub fn type_name(&self) -> &str {
        match self {
            PolicyKind::LbCookieStickiness { .. } => "LBCookieStickinessPolicyType",
            PolicyKind::AppCookieStickiness { .. } => "AppCookieStickinessPolicyType",
            PolicyKind::Other { type_name, .. } => type_name,
        }
    }

    pub fn is_stickiness(&self) -> bool {
        matches!(
            self,
            PolicyKind::LbCookieStickiness { .. } | PolicyKind::AppCookieStickiness { .. }
        )
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        if let PolicyKind::AppCookieStickiness { cookie_name } = self {
            // A cookie name is an RFC 6265 token.
            let token = cookie_name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if cookie_name.is_empty() || !token {
                return Err(validation(format!(
                    "CookieName '{cookie_name}' is not a valid cookie name"
                )));
            }
        }
        Ok(())
    }
}

/// How a load balancer picks an instance for a request that is not sticky.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Balancing {
    #[default]
    RoundRobin,
    LeastOutstandingRequests,
}

impl Balancing {
    pub fn as_str(self) -> &'static str {
        match self {
            Balancing::RoundRobin => "round_robin",
            Balancing::LeastOutstandingRequests => "least_outstanding_requests",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ModelError> {
        match s {
            "round_robin" => Ok(Balancing::RoundRobin),
            "least_outstanding_requests" => Ok(Balancing::LeastOutstandingRequests),
            _ => Err(validation(format!(
                "balancing algorithm '{s}' is invalid: round_robin or least_outstanding_requests"
            ))),
        }
    }
}

/// ELB's load balancer attributes, with its defaults and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// ConnectionSettings.IdleTimeout, 1–4000 s.
    pub idle_timeout_secs: u32,
    /// ConnectionDraining.Enabled.
    pub draining_enabled: bool,
    /// ConnectionDraining.Timeout, 1–3600 s.
    pub draining_timeout_secs: u32,
    /// CrossZoneLoadBalancing.Enabled (recorded; every instance is reachable from every node).
    pub cross_zone: bool,
    /// fulcrum's choice of algorithm for HTTP and HTTPS listeners (the additional attribute
    /// `fulcrum.balancing`); `None` until set, which is round robin, and is not listed among the
    /// additional attributes (ELB lists only those that were set).
    #[serde(default)]
    pub balancing: Option<Balancing>,
    /// AccessLog, recorded and echoed.
    #[serde(default)]
    pub access_log: AccessLog,
    /// `elb.http.desyncmitigationmode`, recorded and echoed: fulcrum always refuses ambiguous
    /// requests, which is what `strictest` asks for.
    #[serde(default)]
    pub desync_mitigation_mode: Option<String>,
}

/// ELB's AccessLog attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLog {
    pub enabled: bool,
    pub s3_bucket_name: Option<String>,
    pub emit_interval: Option<u32>,
    pub s3_bucket_prefix: Option<String>,
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes {
            idle_timeout_secs: 60,
            // As ELB's API creates a load balancer (only AWS's console turns draining on), so
            // that Terraform and the SDKs see the defaults they expect.
            draining_enabled: false,
            draining_timeout_secs: 300,
            cross_zone: false,
            balancing: None,
            access_log: AccessLog::default(),
            desync_mitigation_mode: None,
        }
    }
}

impl Attributes {
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(1..=4000).contains(&self.idle_timeout_secs) {
            return Err(validation(format!(
                "IdleTimeout {} is invalid: it must be between 1 and 4000 seconds",
                self.idle_timeout_secs
            )));
        }
        if !(1..=3600).contains(&self.draining_timeout_secs) {
            return Err(validation(format!(
                "ConnectionDraining Timeout {} is invalid: it must be between 1 and 3600 seconds",
                self.draining_timeout_secs
            )));
        }
        if let Some(interval) = self.access_log.emit_interval {
            if interval != 5 && interval != 60 {
                return Err(validation(format!(
                    "AccessLog EmitInterval {interval} is invalid: 5 or 60 minutes"
                )));
            }
        }
        if let Some(prefix) = &self.access_log.s3_bucket_prefix {
            // The prefix becomes the first directories of the files (and S3 keys): it may not
            // climb out of the tree, nor be mistaken for the part ELB adds.
            let bad = prefix.starts_with('/')
                || prefix.contains("AWSLogs")
                || prefix.split('/').any(|part| part == "." || part == "..");
            if bad {
                return Err(validation(format!(
                    "AccessLog S3BucketPrefix '{prefix}' is invalid: it may not start with '/', \
                     contain 'AWSLogs', or have '.' or '..' as a part"
                )));
            }
        }
        if let Some(mode) = &self.desync_mitigation_mode {
            if !["monitor", "defensive", "strictest"].contains(&mode.as_str()) {
                return Err(validation(format!(
                    "elb.http.desyncmitigationmode '{mode}' is invalid: monitor, defensive or strictest"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_limits() {
        assert!(Attributes::default().validate().is_ok());
        let mut a = Attributes {
            idle_timeout_secs: 0,
            ..Attributes::default()
        };
        assert!(a.validate().is_err());
        a.idle_timeout_secs = 4001;
        assert!(a.validate().is_err());
        a.idle_timeout_secs = 4000;
        a.draining_timeout_secs = 3601;
        assert!(a.validate().is_err());
        a.draining_timeout_secs = 1;
        assert!(a.validate().is_ok());
    }

    #[test]
    fn access_log_prefixes_stay_inside_the_tree() {
        let with = |prefix: &str| Attributes {
            access_log: AccessLog {
                enabled: true,
                s3_bucket_prefix: Some(prefix.into()),
                ..AccessLog::default()
            },
            ..Attributes::default()
        };
        assert!(with("my-app/prod").validate().is_ok());
        for bad in ["/abs", "a/../b", "..", "./x", "x/AWSLogs"] {
            assert!(with(bad).validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn cookie_names_are_tokens() {
        let app = |n: &str| PolicyKind::AppCookieStickiness {
            cookie_name: n.into(),
        };
        assert!(app("JSESSIONID").validate().is_ok());
        assert!(app("").validate().is_err());
        assert!(app("a b").validate().is_err());
        assert!(app("a;b").validate().is_err());
        assert!(app("a=b").validate().is_err());
    }

    #[test]
    fn balancing_names() {
        for b in [Balancing::RoundRobin, Balancing::LeastOutstandingRequests] {
            assert_eq!(Balancing::parse(b.as_str()).unwrap(), b);
        }
        assert!(Balancing::parse("random").is_err());
    }
}
