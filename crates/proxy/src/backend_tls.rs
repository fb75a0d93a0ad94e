//! TLS from the balancer to instances (instance protocol HTTPS or SSL, and HTTPS/SSL health
//! checks): which keys an instance may present and which certificate the balancer presents, read
//! from the load balancer's backend policies for the instance port.
//!
//! - `BackendServerAuthenticationPolicyType` names `PublicKeyPolicyType` policies: the instance's
//!   certificate must carry one of their keys. Without one, any certificate is accepted (as in
//!   ELB), though the handshake signature is always checked.
//! - `BackendClientCertificatePolicyType` (fulcrum's) names an uploaded certificate in its
//!   `ServerCertificateName` attribute: the balancer presents it, so instances can require it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fulcrum_model::{LoadBalancer, PolicyKind, State};
use fulcrum_tls::{backend_client_config, parse_public_key, BackendTlsSettings};
use rustls::ClientConfig;

use crate::tls::TlsCache;

/// How to speak TLS to the instances of one instance port.
#[derive(Clone)]
pub(crate) struct BackendTls {
    pub(crate) settings: BackendTlsSettings,
    pub(crate) config: Arc<ClientConfig>,
}

impl PartialEq for BackendTls {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings && Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for BackendTls {}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.settings.fmt(f)
    }
}

/// Client configs, one per distinct settings and ALPN, reused across snapshots so that
/// sessions to instances resume.
#[derive(Default)]
pub(crate) struct BackendTlsCache {
    configs: HashMap<(BackendTlsSettings, bool), Arc<ClientConfig>>,
    /// Keys asked for since the last `forget_unused`.
    used: HashSet<(BackendTlsSettings, bool)>,
}

impl BackendTlsCache {
    /// The TLS for instances of `lb` on `instance_port`; `http` offers ALPN http/1.1.
    pub(crate) fn for_port(
        &mut self,
        state: &State,
        lb: &LoadBalancer,
        instance_port: u16,
        http: bool,
        certs: &mut TlsCache,
    ) -> Result<BackendTls, String> {
        let settings = settings(state, lb, instance_port, certs)?;
        let key = (settings.clone(), http);
        self.used.insert(key.clone());
        let config = match self.configs.get(&key) {
            Some(c) => Arc::clone(c),
            None => {
                let alpn: &[&[u8]] = if http { &[b"http/1.1"] } else { &[] };
                let config = backend_client_config(&settings, alpn).map_err(|e| e.to_string())?;
                self.configs.insert(key, Arc::clone(&config));
                config
            }
        };
        Ok(BackendTls { settings, config })
    }

    /// Forgets the configs no snapshot asked for since the last call (once per apply).
    pub(crate) fn forget_unused(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.configs.retain(|k, _| used.contains(k));
    }
}

fn settings(
    state: &State,
    lb: &LoadBalancer,
    instance_port: u16,
    certs: &mut TlsCache,
) -> Result<BackendTlsSettings, String> {
    let mut settings = BackendTlsSettings::default();
    let Some(names) = lb.backend_policies.get(&instance_port) else {
        return Ok(settings);
    };
    for policy in names.iter().filter_map(|n| lb.policy(n)) {
        let PolicyKind::Other {
            type_name,
            attributes,
        } = &policy.kind
        else {
            continue;
        };
        let values = |key: &'static str| {
            attributes
                .iter()
                .filter(move |(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        match type_name.as_str() {
            "BackendServerAuthenticationPolicyType" => {
                for key_policy in values("PublicKeyPolicyName") {
                    let Some(PolicyKind::Other { attributes, .. }) =
                        lb.policy(key_policy).map(|p| &p.kind)
                    else {
                        return Err(format!("public key policy {key_policy} is missing"));
                    };
                    for (_, key) in attributes.iter().filter(|(k, _)| k == "PublicKey") {
                        let der = parse_public_key(key)
                            .map_err(|e| format!("policy {key_policy}: {e}"))?;
                        settings.pinned_keys.push(der);
                    }
                }
            }
            "BackendClientCertificatePolicyType" => {
                let name = values("ServerCertificateName").next().ok_or_else(|| {
                    format!("policy {} names no ServerCertificateName", policy.name)
                })?;
                let cert = state.certificate_by_name(name).ok_or_else(|| {
                    format!("policy {}: no certificate named {name}", policy.name)
                })?;
                let imported = certs
                    .imported(state, &cert.id)
                    .ok_or_else(|| format!("certificate {name} is unusable"))?;
                settings.client_certificate = Some(imported);
            }
            _ => {}
        }
    }
    Ok(settings)
}
