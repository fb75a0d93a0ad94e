//! ELB's SSL negotiation policies (`SSLNegotiationPolicyType`) mapped onto rustls.
//!
//! A policy is a set of boolean attributes, one per protocol and per cipher, plus
//! `Server-Defined-Cipher-Order` and optionally `Reference-Security-Policy` naming a predefined
//! policy. rustls implements TLS 1.2 and 1.3 with AEAD ECDHE suites only, so a policy maps to
//! the part of it rustls can do; a policy that leaves nothing rustls can do is refused with a
//! message saying why, never quietly replaced by something else. TLS 1.3, which ELB Classic
//! policies cannot express, stays on unless the policy sets fulcrum's `Protocol-TLSv1.3` to false.

use rustls::CipherSuite;

use crate::{cipher_suite_by_name, ServerTlsSettings, TlsError};

/// A predefined policy as `DescribeLoadBalancerPolicies` lists it.
pub struct PredefinedPolicy {
    pub name: &'static str,
    pub protocols: &'static [&'static str],
    /// In the server's order of preference.
    pub ciphers: &'static [&'static str],
}

const TLS12_GCM_SHA: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
];

const ALL_2016: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
    "AES256-SHA",
];

/// The predefined policies fulcrum offers; the first is ELB's default for new HTTPS listeners.
pub const PREDEFINED_POLICIES: &[PredefinedPolicy] = &[
    PredefinedPolicy {
        name: "ELBSecurityPolicy-2016-08",
        protocols: &["Protocol-TLSv1", "Protocol-TLSv1.1", "Protocol-TLSv1.2"],
        ciphers: ALL_2016,
    },
    PredefinedPolicy {
        name: "ELBSecurityPolicy-TLS-1-2-2017-01",
        protocols: &["Protocol-TLSv1.2"],
        ciphers: TLS12_GCM_SHA,
    },
    PredefinedPolicy {
        name: "ELBSecurityPolicy-TLS-1-1-2017-01",
        protocols: &["Protocol-TLSv1.1", "Protocol-TLSv1.2"],
        ciphers: ALL_2016,
    },
    PredefinedPolicy {
        name: "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
        protocols: &["Protocol-TLSv1.2"],
        ciphers: ALL_2016,
    },
    PredefinedPolicy {
        name: "ELBSecurityPolicy-FS-1-2-Res-2020-10",
        protocols: &["Protocol-TLSv1.2"],
        ciphers: &[
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
        ],
    },
];

/// Every protocol attribute an SSL negotiation policy can name.
pub const PROTOCOL_ATTRIBUTES: &[&str] = &[
    "Protocol-SSLv3",
    "Protocol-TLSv1",
    "Protocol-TLSv1.1",
    "Protocol-TLSv1.2",
    "Protocol-TLSv1.3",
];

pub fn predefined_policy(name: &str) -> Option<&'static PredefinedPolicy> {
    PREDEFINED_POLICIES.iter().find(|p| p.name == name)
}

impl PredefinedPolicy {
    /// Its attributes as ELB describes them: every protocol and cipher it enables, the cipher
    /// order, and the reference to itself.
    pub fn attributes(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = PROTOCOL_ATTRIBUTES
            .iter()
            .filter(|p| **p != "Protocol-TLSv1.3")
            .map(|p| (p.to_string(), self.protocols.contains(p).to_string()))
            .collect();
        out.push(("Server-Defined-Cipher-Order".into(), "true".into()));
        out.extend(self.ciphers.iter().map(|c| (c.to_string(), "true".into())));
        out
    }
}

/// The rustls settings for a policy's attributes.
pub fn settings_from_policy(
    attributes: &[(String, String)],
) -> Result<ServerTlsSettings, TlsError> {
    let config = |msg: String| TlsError::Config(msg);
    // Start from the referenced policy, then apply the attributes given explicitly.
    let mut enabled: Vec<(String, bool)> = Vec::new();
    let mut set = |name: &str, on: bool| match enabled.iter_mut().find(|(n, _)| n == name) {
        Some(e) => e.1 = on,
        None => enabled.push((name.to_owned(), on)),
    };
    if let Some((_, reference)) = attributes
        .iter()
        .find(|(k, _)| k == "Reference-Security-Policy")
    {
        let policy = predefined_policy(reference).ok_or_else(|| {
            config(format!(
                "Reference-Security-Policy '{reference}' is not a predefined policy"
            ))
        })?;
        for (k, v) in policy.attributes() {
            set(&k, v == "true");
        }
    }
    for (k, v) in attributes
        .iter()
        .filter(|(k, _)| k != "Reference-Security-Policy")
    {
        let on = match v.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(config(format!(
                    "attribute {k} must be true or false, not '{v}'"
                )))
            }
        };
        if !k.starts_with("Protocol-") && k != "Server-Defined-Cipher-Order" && !is_known_cipher(k)
        {
            return Err(config(format!("{k} is not an SSL negotiation attribute")));
        }
        set(k, on);
    }
    let is_on = |name: &str| enabled.iter().any(|(n, on)| n == name && *on);
    let tls12 = is_on("Protocol-TLSv1.2");
    // TLS 1.3 comes with TLS 1.2 unless turned off, or alone when asked for by name; a policy
    // of older protocols only gets neither, and is refused below.
    let tls13_off = enabled
        .iter()
        .any(|(n, on)| n == "Protocol-TLSv1.3" && !*on);
    let tls13 = is_on("Protocol-TLSv1.3") || (tls12 && !tls13_off);
    if !tls12 && !tls13 {
        let asked: Vec<&str> = enabled
            .iter()
            .filter(|(n, on)| *on && n.starts_with("Protocol-"))
            .map(|(n, _)| n.as_str())
            .collect();
        return Err(config(format!(
            "the policy enables no protocol fulcrum supports (asked: {}): fulcrum terminates TLS 1.2 and 1.3 only; \
             enable Protocol-TLSv1.2",
            if asked.is_empty() { "none".into() } else { asked.join(", ") }
        )));
    }
    let mut suites: Vec<CipherSuite> = Vec::new();
    if tls13 {
        suites.extend(
            [
                "TLS_AES_128_GCM_SHA256",
                "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256",
            ]
            .iter()
            .filter_map(|n| cipher_suite_by_name(n)),
        );
    }
    if tls12 {
        let tls12_suites: Vec<CipherSuite> = enabled
            .iter()
            .filter(|(n, on)| {
                *on && !n.starts_with("Protocol-") && n != "Server-Defined-Cipher-Order"
            })
            .filter_map(|(n, _)| cipher_suite_by_name(n))
            .filter(|s| !is_tls13(*s))
            .collect();
        if tls12_suites.is_empty() {
            return Err(config(
                "the policy enables TLS 1.2 but none of its ciphers is one fulcrum supports: \
                 enable at least one of ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256, \
                 ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384, \
                 ECDHE-ECDSA-CHACHA20-POLY1305, ECDHE-RSA-CHACHA20-POLY1305"
                    .into(),
            ));
        }
        suites.extend(tls12_suites);
    }
    Ok(ServerTlsSettings {
        tls13_only: !tls12,
        cipher_suites: suites,
        server_cipher_order: is_on("Server-Defined-Cipher-Order"),
    })
}

fn is_tls13(suite: CipherSuite) -> bool {
    matches!(
        suite,
        CipherSuite::TLS13_AES_128_GCM_SHA256
            | CipherSuite::TLS13_AES_256_GCM_SHA384
            | CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    )
}

/// Cipher names ELB policies use, whether or not rustls implements them.
fn is_known_cipher(name: &str) -> bool {
    cipher_suite_by_name(name).is_some()
        || ALL_2016.contains(&name)
        || [
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-CHACHA20-POLY1305",
            "DES-CBC3-SHA",
            "RC4-SHA",
            "RC4-MD5",
            "DHE-RSA-AES128-SHA",
            "DHE-DSS-AES128-SHA",
        ]
        .contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn predefined_policies_map_to_tls12_and_13_with_aead_suites() {
        for p in PREDEFINED_POLICIES {
            let s = settings_from_policy(&attrs(&[("Reference-Security-Policy", p.name)])).unwrap();
            assert!(!s.tls13_only, "{}", p.name);
            assert!(s.server_cipher_order);
            assert!(s
                .cipher_suites
                .contains(&CipherSuite::TLS13_AES_128_GCM_SHA256));
            assert!(s
                .cipher_suites
                .contains(&CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256));
            assert!(!s.cipher_suites.is_empty());
        }
    }

    #[test]
    fn explicit_attributes_override_the_reference() {
        let s = settings_from_policy(&attrs(&[
            (
                "Reference-Security-Policy",
                "ELBSecurityPolicy-TLS-1-2-2017-01",
            ),
            ("Protocol-TLSv1.3", "false"),
            ("ECDHE-RSA-AES128-GCM-SHA256", "false"),
        ]))
        .unwrap();
        assert!(!s
            .cipher_suites
            .contains(&CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256));
        assert!(!s
            .cipher_suites
            .contains(&CipherSuite::TLS13_AES_128_GCM_SHA256));
        let only13 = settings_from_policy(&attrs(&[
            ("Protocol-TLSv1.2", "false"),
            ("Protocol-TLSv1.3", "true"),
        ]))
        .unwrap();
        assert!(
            settings_from_policy(&attrs(&[("Protocol-TLSv1.2", "false")])).is_err(),
            "no protocol asked for that fulcrum has"
        );
        assert!(only13.tls13_only);
    }

    #[test]
    fn what_rustls_cannot_do_is_refused_not_weakened() {
        let old = settings_from_policy(&attrs(&[
            ("Protocol-TLSv1", "true"),
            ("AES128-SHA", "true"),
        ]))
        .unwrap_err();
        assert!(old.to_string().contains("TLS 1.2 and 1.3 only"), "{old}");
        let cbc_only = settings_from_policy(&attrs(&[
            ("Protocol-TLSv1.2", "true"),
            ("AES128-SHA", "true"),
            ("ECDHE-RSA-AES128-SHA", "true"),
        ]))
        .unwrap_err();
        assert!(
            cbc_only.to_string().contains("none of its ciphers"),
            "{cbc_only}"
        );
        assert!(settings_from_policy(&attrs(&[("Reference-Security-Policy", "nope")])).is_err());
        assert!(settings_from_policy(&attrs(&[("Bogus", "true")])).is_err());
        assert!(settings_from_policy(&attrs(&[("Protocol-TLSv1.2", "yes")])).is_err());
    }
}
