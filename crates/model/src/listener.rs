//! Listeners: what a load balancer accepts on a port and how it talks to its instances.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{validation, ModelError};

/// A protocol on either side of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    Ssl,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
            Protocol::Tcp => "TCP",
            Protocol::Ssl => "SSL",
        }
    }

    /// Whether this side speaks TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Ssl)
    }

    /// Whether this side carries HTTP requests (as opposed to a byte stream).
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Https)
    }
}

impl FromStr for Protocol {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        match s.to_ascii_uppercase().as_str() {
            "HTTP" => Ok(Protocol::Http),
            "HTTPS" => Ok(Protocol::Https),
            "TCP" => Ok(Protocol::Tcp),
            "SSL" => Ok(Protocol::Ssl),
            _ => Err(validation(format!(
                "Protocol '{s}' is invalid: one of HTTP, HTTPS, TCP, SSL"
            ))),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One listener of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub protocol: Protocol,
    pub port: u16,
    pub instance_protocol: Protocol,
    pub instance_port: u16,
    /// Server certificate ids for TLS listeners. The first is served when the client sends no SNI
    /// name or one that no certificate covers; the others are chosen by SNI.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Names of the load balancer's policies applied to this listener (stickiness, negotiation).
    #[serde(default)]
    pub policy_names: Vec<String>,
}

impl Listener {
    /// A listener with no certificate and no policy.
    pub fn new(
        protocol: Protocol,
        port: u16,
        instance_protocol: Protocol,
        instance_port: u16,
    ) -> Self {
        Listener {
            protocol,
            port,
            instance_protocol,
            instance_port,
            certificates: Vec::new(),
            policy_names: Vec::new(),
        }
    }

    /// Checks what a listener must satisfy on its own (ports, protocol pairs, certificates).
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.port == 0 || self.instance_port == 0 {
            return Err(validation(
                "LoadBalancerPort and InstancePort must be between 1 and 65535",
            ));
        }
        if self.protocol.is_http() != self.instance_protocol.is_http() {
            return Err(ModelError::InvalidConfiguration(format!(
                "InstanceProtocol {} is not compatible with Protocol {}: HTTP and HTTPS listeners \
                 forward to HTTP or HTTPS instances, TCP and SSL listeners to TCP or SSL instances",
                self.instance_protocol, self.protocol
            )));
        }
        match (self.protocol.is_tls(), self.certificates.is_empty()) {
            (true, true) => Err(validation(format!(
                "SSLCertificateId is required for a {} listener (port {})",
                self.protocol, self.port
            ))),
            (false, false) => Err(validation(format!(
                "SSLCertificateId is only valid on HTTPS and SSL listeners, not {} (port {})",
                self.protocol, self.port
            ))),
            _ => Ok(()),
        }
    }

    /// Whether `other` describes the same listener (ELB treats re-creating an identical listener
    /// as a no-op and a different one on the same port as `DuplicateListener`).
    pub fn same_as(&self, other: &Listener) -> bool {
        self.protocol == other.protocol
            && self.port == other.port
            && self.instance_protocol == other.instance_protocol
            && self.instance_port == other.instance_port
            && self.certificates.first() == other.certificates.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn https(certs: &[&str]) -> Listener {
        let mut l = Listener::new(Protocol::Https, 443, Protocol::Http, 80);
        l.certificates = certs.iter().map(|s| s.to_string()).collect();
        l
    }

    #[test]
    fn protocols_parse_case_insensitively() {
        assert_eq!("https".parse::<Protocol>().unwrap(), Protocol::Https);
        assert_eq!("SSL".parse::<Protocol>().unwrap(), Protocol::Ssl);
        assert_eq!(
            "UDP".parse::<Protocol>().unwrap_err().code(),
            "ValidationError"
        );
    }

    #[test]
    fn protocol_pairs_follow_elb() {
        use Protocol::*;
        for (front, back, ok) in [
            (Http, Http, true),
            (Http, Https, true),
            (Https, Http, true),
            (Https, Https, true),
            (Tcp, Tcp, true),
            (Tcp, Ssl, true),
            (Ssl, Tcp, true),
            (Ssl, Ssl, true),
            (Http, Tcp, false),
            (Https, Ssl, false),
            (Tcp, Http, false),
            (Ssl, Https, false),
        ] {
            let mut l = Listener::new(front, 1000, back, 2000);
            if front.is_tls() {
                l.certificates.push("c".into());
            }
            assert_eq!(l.validate().is_ok(), ok, "{front}->{back}");
            if !ok {
                assert_eq!(
                    l.validate().unwrap_err().code(),
                    "InvalidConfigurationRequest"
                );
            }
        }
    }

    #[test]
    fn ports_and_certificates() {
        assert!(https(&["c"]).validate().is_ok());
        assert_eq!(https(&[]).validate().unwrap_err().code(), "ValidationError");
        let mut http = Listener::new(Protocol::Http, 80, Protocol::Http, 8080);
        assert!(http.validate().is_ok());
        http.certificates.push("c".into());
        assert!(http.validate().is_err());
        let zero = Listener::new(Protocol::Http, 0, Protocol::Http, 80);
        assert!(zero.validate().is_err());
        let zero = Listener::new(Protocol::Http, 80, Protocol::Http, 0);
        assert!(zero.validate().is_err());
    }
}
