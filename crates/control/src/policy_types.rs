//! The policy types fulcrum knows (as `DescribeLoadBalancerPolicyTypes` lists them), and the
//! check of a new policy's attributes against its type.

use fulcrum_model::PolicyKind;

use crate::ControlError;

/// (attribute, type, cardinality, default, description)
type AttributeType = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

pub struct PolicyType {
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttributeType],
}

pub const POLICY_TYPES: &[PolicyType] = &[
    PolicyType {
        name: "AppCookieStickinessPolicyType",
        description: "Stickiness policy with session lifetimes controlled by the lifetime of the application-generated cookie. This policy can be associated only with HTTP/HTTPS listeners.",
        attributes: &[("CookieName", "String", "ONE", "", "")],
    },
    PolicyType {
        name: "LBCookieStickinessPolicyType",
        description: "Stickiness policy with session lifetimes controlled by the browser (user-agent) or a specified expiration period. This policy can be associated only with HTTP/HTTPS listeners.",
        attributes: &[("CookieExpirationPeriod", "Long", "ZERO_OR_ONE", "", "")],
    },
    PolicyType {
        name: "SSLNegotiationPolicyType",
        description: "Listener policy that defines the ciphers and protocols that will be accepted by the load balancer. fulcrum terminates TLS 1.2 and 1.3 with AEAD ECDHE ciphers; a policy enabling nothing of that is refused. This policy can be associated only with HTTPS/SSL listeners.",
        attributes: &[
            ("Reference-Security-Policy", "String", "ZERO_OR_ONE", "", "A predefined policy (ELBSecurityPolicy-*) to start from"),
            ("Protocol-TLSv1.2", "Boolean", "ZERO_OR_ONE", "true", ""),
            ("Protocol-TLSv1.3", "Boolean", "ZERO_OR_ONE", "true", "fulcrum's addition: TLS 1.3"),
            ("Protocol-TLSv1.1", "Boolean", "ZERO_OR_ONE", "false", "not supported: ignored"),
            ("Protocol-TLSv1", "Boolean", "ZERO_OR_ONE", "false", "not supported: ignored"),
            ("Server-Defined-Cipher-Order", "Boolean", "ZERO_OR_ONE", "true", ""),
            ("ECDHE-ECDSA-AES128-GCM-SHA256", "Boolean", "ZERO_OR_ONE", "", ""),
            ("ECDHE-RSA-AES128-GCM-SHA256", "Boolean", "ZERO_OR_ONE", "", ""),
            ("ECDHE-ECDSA-AES256-GCM-SHA384", "Boolean", "ZERO_OR_ONE", "", ""),
            ("ECDHE-RSA-AES256-GCM-SHA384", "Boolean", "ZERO_OR_ONE", "", ""),
            ("ECDHE-ECDSA-CHACHA20-POLY1305", "Boolean", "ZERO_OR_ONE", "", ""),
            ("ECDHE-RSA-CHACHA20-POLY1305", "Boolean", "ZERO_OR_ONE", "", ""),
        ],
    },
    PolicyType {
        name: "ProxyProtocolPolicyType",
        description: "Policy that controls whether to include the IP address and port of the originating request for TCP messages. This policy operates on TCP/SSL listeners only.",
        attributes: &[
            ("ProxyProtocol", "Boolean", "ONE", "", ""),
            ("ProxyProtocolVersion", "Integer", "ZERO_OR_ONE", "1", "fulcrum's addition: 1 (text) or 2 (binary)"),
        ],
    },
    PolicyType {
        name: "PublicKeyPolicyType",
        description: "Policy containing a list of public keys to accept when authenticating the back-end server(s). This policy cannot be applied directly to back-end servers or listeners but must be part of a BackendServerAuthenticationPolicyType.",
        attributes: &[("PublicKey", "String", "ONE", "", "")],
    },
    PolicyType {
        name: "BackendClientCertificatePolicyType",
        description: "fulcrum's: the balancer presents this uploaded certificate (with its key) to instances over HTTPS/SSL, so that an instance can require it and refuse anyone else. The certificate must allow client authentication. This policy can be associated only with back-end servers that are using HTTPS/SSL.",
        attributes: &[("ServerCertificateName", "String", "ONE", "", "The name of an uploaded server certificate")],
    },
    PolicyType {
        name: "BackendServerAuthenticationPolicyType",
        description: "Policy that controls authentication to back-end server(s) and contains one or more policies, such as an instance of a PublicKeyPolicyType. This policy can be associated only with back-end servers that are using HTTPS/SSL.",
        attributes: &[("PublicKeyPolicyName", "PolicyName", "ONE_OR_MORE", "", "")],
    },
];

pub fn find(name: &str) -> Option<&'static PolicyType> {
    POLICY_TYPES.iter().find(|t| t.name == name)
}

/// Builds the model's policy kind from a type name and attributes, checking them.
pub fn policy_kind(
    type_name: &str,
    attributes: Vec<(String, String)>,
) -> Result<PolicyKind, ControlError> {
    let t = find(type_name).ok_or_else(|| {
        ControlError::new(
            "PolicyTypeNotFound",
            format!("The requested policy type {type_name} does not exist"),
        )
    })?;
    let one = |name: &str| -> Result<Option<String>, ControlError> {
        let mut values = attributes.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.clone());
        if values.next().is_some() {
            return Err(ControlError::new(
                "InvalidConfigurationRequest",
                format!("{name} may be given once"),
            ));
        }
        Ok(first)
    };
    if type_name != "SSLNegotiationPolicyType" {
        if let Some((k, _)) = attributes
            .iter()
            .find(|(k, _)| !t.attributes.iter().any(|a| a.0 == k))
        {
            return Err(ControlError::new(
                "InvalidConfigurationRequest",
                format!("{k} is not an attribute of {type_name}"),
            ));
        }
    }
    let missing = |name: &str| {
        ControlError::new(
            "InvalidConfigurationRequest",
            format!("{type_name} requires the attribute {name}"),
        )
    };
    Ok(match type_name {
        "AppCookieStickinessPolicyType" => PolicyKind::AppCookieStickiness {
            cookie_name: one("CookieName")?.ok_or_else(|| missing("CookieName"))?,
        },
        "LBCookieStickinessPolicyType" => PolicyKind::LbCookieStickiness {
            expiration_secs: one("CookieExpirationPeriod")?
                .map(|v| {
                    v.parse().map_err(|_| {
                        ControlError::validation(format!(
                            "CookieExpirationPeriod '{v}' is not a number of seconds"
                        ))
                    })
                })
                .transpose()?,
        },
        _ => {
            match type_name {
                "SSLNegotiationPolicyType" => {
                    fulcrum_tls::settings_from_policy(&attributes).map_err(|e| {
                        ControlError::new("InvalidConfigurationRequest", e.to_string())
                    })?;
                }
                "ProxyProtocolPolicyType" => {
                    let v = one("ProxyProtocol")?.ok_or_else(|| missing("ProxyProtocol"))?;
                    if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                        return Err(ControlError::validation(
                            "ProxyProtocol must be true or false",
                        ));
                    }
                    if let Some(version) = one("ProxyProtocolVersion")? {
                        if version != "1" && version != "2" {
                            return Err(ControlError::validation(
                                "ProxyProtocolVersion must be 1 or 2",
                            ));
                        }
                    }
                }
                "PublicKeyPolicyType" => {
                    let key = one("PublicKey")?.ok_or_else(|| missing("PublicKey"))?;
                    fulcrum_tls::parse_public_key(&key).map_err(|e| {
                        ControlError::new("InvalidConfigurationRequest", e.to_string())
                    })?;
                }
                "BackendClientCertificatePolicyType" => {
                    one("ServerCertificateName")?
                        .ok_or_else(|| missing("ServerCertificateName"))?;
                }
                "BackendServerAuthenticationPolicyType"
                    if !attributes.iter().any(|(k, _)| k == "PublicKeyPolicyName") =>
                {
                    return Err(missing("PublicKeyPolicyName"));
                }
                _ => {}
            }
            PolicyKind::Other {
                type_name: type_name.to_owned(),
                attributes,
            }
        }
    })
}
