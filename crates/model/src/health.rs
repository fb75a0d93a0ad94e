//! Health check configuration: the target and ELB's limits on timing and thresholds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{validation, ModelError};

/// What a health check probes: `HTTP:port/path`, `HTTPS:port/path`, `TCP:port` or `SSL:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HealthTarget {
    Http { port: u16, path: String },
    Https { port: u16, path: String },
    Tcp { port: u16 },
    Ssl { port: u16 },
}

impl HealthTarget {
    pub fn port(&self) -> u16 {
        match self {
            HealthTarget::Http { port, .. }
            | HealthTarget::Https { port, .. }
            | HealthTarget::Tcp { port }
            | HealthTarget::Ssl { port } => *port,
        }
    }
}

impl FromStr for HealthTarget {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        let invalid = |why: &str| {
            validation(format!(
                "Target '{s}' is invalid ({why}): use HTTP:port/path, HTTPS:port/path, TCP:port or SSL:port"
            ))
        };
        let (proto, rest) = s.split_once(':').ok_or_else(|| invalid("no protocol"))?;
        let proto = proto.to_ascii_uppercase();
        let http_like = proto == "HTTP" || proto == "HTTPS";
        let (port, path) = match rest.find('/') {
            Some(i) if http_like => (&rest[..i], &rest[i..]),
            Some(_) => return Err(invalid("TCP and SSL targets take no path")),
            None if http_like => return Err(invalid("HTTP and HTTPS targets need a path")),
            None => (rest, ""),
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("port must be 1 to 65535"))?;
        if path.len() > 1024 || path.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(invalid(
                "the path must be printable ASCII without spaces, at most 1024 characters",
            ));
        }
        let path = path.to_owned();
        match proto.as_str() {
            "HTTP" => Ok(HealthTarget::Http { port, path }),
            "HTTPS" => Ok(HealthTarget::Https { port, path }),
            "TCP" => Ok(HealthTarget::Tcp { port }),
            "SSL" => Ok(HealthTarget::Ssl { port }),
            _ => Err(invalid("unknown protocol")),
        }
    }
}

impl fmt::Display for HealthTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthTarget::Http { port, path } => write!(f, "HTTP:{port}{path}"),
            HealthTarget::Https { port, path } => write!(f, "HTTPS:{port}{path}"),
            HealthTarget::Tcp { port } => write!(f, "TCP:{port}"),
            HealthTarget::Ssl { port } => write!(f, "SSL:{port}"),
        }
    }
}

impl TryFrom<String> for HealthTarget {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, ModelError> {
        s.parse()
    }
}

impl From<HealthTarget> for String {
    fn from(t: HealthTarget) -> String {
        t.to_string()
    }
}

/// A load balancer's health check, with ELB's units (seconds, consecutive checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub target: HealthTarget,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

impl HealthCheck {
    /// ELB's default for a new load balancer: TCP to the first listener's instance port, every
    /// 30 s, 5 s timeout, 10 passes to come in, 2 failures to go out.
    pub fn default_for_port(port: u16) -> Self {
        HealthCheck {
            target: HealthTarget::Tcp { port },
            interval_secs: 30,
            timeout_secs: 5,
            healthy_threshold: 10,
            unhealthy_threshold: 2,
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        if !(5..=300).contains(&self.interval_secs) {
            return Err(validation(format!(
                "Interval {} is invalid: it must be between 5 and 300 seconds",
                self.interval_secs
            )));
        }
        if !(2..=60).contains(&self.timeout_secs) {
            return Err(validation(format!(
                "Timeout {} is invalid: it must be between 2 and 60 seconds",
                self.timeout_secs
            )));
        }
        if self.timeout_secs >= self.interval_secs {
            return Err(validation(format!(
                "Timeout {} must be smaller than Interval {}",
                self.timeout_secs, self.interval_secs
            )));
        }
        for (name, v) in [
            ("HealthyThreshold", self.healthy_threshold),
            ("UnhealthyThreshold", self.unhealthy_threshold),
        ] {
            if !(2..=10).contains(&v) {
                return Err(validation(format!(
                    "{name} {v} is invalid: it must be between 2 and 10"
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
    fn targets_parse_and_print() {
        for s in [
            "HTTP:80/",
            "HTTPS:8443/health?x=1",
            "TCP:5432",
            "SSL:443",
            "HTTP:1/a/b",
        ] {
            assert_eq!(s.parse::<HealthTarget>().unwrap().to_string(), s);
        }
        assert_eq!(
            "http:80/ping".parse::<HealthTarget>().unwrap(),
            HealthTarget::Http {
                port: 80,
                path: "/ping".into()
            }
        );
        for bad in [
            "HTTP:80",
            "TCP:80/",
            "SSL:443/x",
            "UDP:53",
            "HTTP:0/",
            "HTTP:70000/",
            "HTTP:x/",
            "TCP:",
            "80",
            "",
            "HTTP:80/a b",
            "HTTP:80/\u{1}",
        ] {
            let err = bad.parse::<HealthTarget>().unwrap_err();
            assert_eq!(err.code(), "ValidationError", "{bad}");
        }
    }

    fn check(interval: u32, timeout: u32, healthy: u32, unhealthy: u32) -> Result<(), ModelError> {
        HealthCheck {
            target: HealthTarget::Tcp { port: 80 },
            interval_secs: interval,
            timeout_secs: timeout,
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
        }
        .validate()
    }

    #[test]
    fn limits_follow_elb() {
        assert!(check(5, 2, 2, 2).is_ok());
        assert!(check(300, 60, 10, 10).is_ok());
        assert!(HealthCheck::default_for_port(80).validate().is_ok());
        assert!(check(4, 2, 2, 2).is_err());
        assert!(check(301, 2, 2, 2).is_err());
        assert!(check(30, 1, 2, 2).is_err());
        assert!(check(300, 61, 2, 2).is_err());
        assert!(
            check(10, 10, 2, 2).is_err(),
            "timeout must be below interval"
        );
        assert!(check(30, 5, 1, 2).is_err());
        assert!(check(30, 5, 11, 2).is_err());
        assert!(check(30, 5, 2, 1).is_err());
        assert!(check(30, 5, 2, 11).is_err());
    }
}
