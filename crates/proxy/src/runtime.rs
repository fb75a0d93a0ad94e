//! The data plane's view of the configuration: a snapshot compiled into what a request needs
//! (routes by port, instance sets with their health and connection pools), built off the hot
//! path and published with one pointer swap.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fulcrum_model::{Balancing, LbName, LoadBalancer, PolicyKind, Protocol, Snapshot};
use fulcrum_telemetry::access_log::LogTarget;
use fulcrum_telemetry::LbMetrics;
use fulcrum_tls::BackendTlsSettings;

use crate::backend_tls::BackendTlsCache;
use crate::health::{HealthChecks, InstanceHealth};
use crate::proxy_protocol;
use crate::sticky;
use crate::tls::TlsCache;
use crate::upstream::Upstream;
use crate::DataPlaneConfig;

/// Everything the listeners need, for one revision of the state.
#[derive(Default)]
pub(crate) struct Runtime {
    pub(crate) routes: HashMap<u16, Arc<Route>>,
}

/// One listener: where its requests go and how.
pub(crate) struct Route {
    pub(crate) protocol: Protocol,
    pub(crate) idle_timeout: Duration,
    pub(crate) balancing: Balancing,
    pub(crate) stickiness: Stickiness,
    pub(crate) targets: Targets,
    /// For TCP and SSL listeners: the PROXY protocol header the instance port asks for.
    pub(crate) proxy_protocol: Option<proxy_protocol::Version>,
    /// The load balancer's metrics, shared by its listeners and kept across snapshots.
    pub(crate) metrics: Arc<LbMetrics>,
    /// The load balancer's access log (whether records are wanted, and where they go).
    pub(crate) log: Arc<LogTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stickiness {
    None,
    /// The balancer's `AWSELB` cookie, with an optional lifetime.
    LbCookie {
        max_age: Option<u64>,
    },
    /// Follow the application's cookie of this name.
    AppCookie {
        name: String,
    },
}

/// One registered instance as a listener sees it.
pub(crate) struct Target {
    pub(crate) upstream: Arc<Upstream>,
    pub(crate) health: Arc<InstanceHealth>,
    /// The value of the stickiness cookie that names this instance.
    pub(crate) cookie: String,
}

/// The instances of one listener, with the round-robin cursor.
pub(crate) struct Targets {
    pub(crate) all: Vec<Target>,
    by_cookie: HashMap<String, usize>,
    next: AtomicUsize,
}

impl Targets {
    fn new(all: Vec<Target>) -> Self {
        let by_cookie = all
            .iter()
            .enumerate()
            .map(|(i, t)| (t.cookie.clone(), i))
            .collect();
        Targets {
            all,
            by_cookie,
            next: AtomicUsize::new(0),
        }
    }

    /// The in-service instance a stickiness cookie names.
    pub(crate) fn by_cookie(&self, cookie: &str) -> Option<usize> {
        self.by_cookie
            .get(cookie)
            .copied()
            .filter(|&i| self.all[i].health.is_in_service())
    }

    /// Picks an in-service instance other than `exclude`.
    pub(crate) fn pick(&self, balancing: Balancing, exclude: Option<usize>) -> Option<usize> {
        let n = self.all.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let eligible = |i: &usize| Some(*i) != exclude && self.all[*i].health.is_in_service();
        let mut candidates = (start..n).chain(0..start).filter(eligible);
        match balancing {
            Balancing::RoundRobin => candidates.next(),
            // Starting the scan at the round-robin cursor spreads ties evenly.
            Balancing::LeastOutstandingRequests => {
                candidates.min_by_key(|&i| self.all[i].upstream.outstanding())
            }
        }
    }
}

/// The connections of each load balancer to each instance address (and TLS settings, for
/// HTTPS and SSL instances), with the connection draining grace in force for them.
pub(crate) type Upstreams =
    HashMap<(LbName, SocketAddr, Option<BackendTlsSettings>), (Arc<Upstream>, Duration)>;

/// Each load balancer's access-log target, replaced when a snapshot is applied (its settings
/// may have changed) with its live tails carried over.
pub(crate) type LogTargets = HashMap<LbName, Arc<LogTarget>>;

/// Compiles a snapshot. Connection pools are reused so that a change to the state does not throw
/// away warm connections; those of instances that left a load balancer are retired after its
/// connection-draining grace. Health comes from the running checkers.
pub(crate) fn compile(
    snapshot: &Snapshot,
    health: &HealthChecks,
    upstreams: &mut Upstreams,
    backend: &mut BackendTlsCache,
    certs: &mut TlsCache,
    log_targets: &mut LogTargets,
    config: &DataPlaneConfig,
) -> Runtime {
    let state = &snapshot.state;
    let mut routes = HashMap::new();
    let mut used = HashMap::new();
    let mut logs = HashMap::new();
    for lb in state.load_balancers.values() {
        let metrics = config.metrics.lb(lb.name.as_str());
        let log = log_target(lb, log_targets.get(&lb.name));
        logs.insert(lb.name.clone(), Arc::clone(&log));
        // Without connection draining, requests to a departed instance end at once, as in ELB.
        let grace = if lb.attributes.draining_enabled {
            Duration::from_secs(lb.attributes.draining_timeout_secs.into())
        } else {
            Duration::ZERO
        };
        for listener in &lb.listeners {
            let tls = if listener.instance_protocol.is_tls() {
                let http = listener.instance_protocol.is_http();
                match backend.for_port(state, lb, listener.instance_port, http, certs) {
                    Ok(tls) => Some(tls),
                    Err(why) => {
                        // Nothing is sent to instances the balancer cannot speak TLS to as asked.
                        tracing::error!(lb = %lb.name, port = listener.port, %why, "TLS to instances");
                        continue;
                    }
                }
            } else {
                None
            };
            let targets = lb
                .instances
                .iter()
                .filter_map(|id| {
                    let ip = state.instance_address(id)?;
                    let health = health.health(&(lb.name.clone(), id.clone()))?;
                    let addr = SocketAddr::new(ip, listener.instance_port);
                    let key = (
                        lb.name.clone(),
                        addr,
                        tls.as_ref().map(|t| t.settings.clone()),
                    );
                    let upstream = upstreams
                        .get(&key)
                        .map(|(u, _)| Arc::clone(u))
                        .unwrap_or_else(|| {
                            Arc::new(Upstream::new(
                                addr,
                                config.connect_timeout,
                                tls.clone(),
                                &config.limits,
                            ))
                        });
                    used.insert(key, (Arc::clone(&upstream), grace));
                    Some(Target {
                        upstream,
                        health,
                        cookie: sticky::cookie_value(&config.stickiness_key, &lb.name, id),
                    })
                })
                .collect();
            let stickiness = match lb.stickiness(listener) {
                Some(PolicyKind::LbCookieStickiness { expiration_secs }) => Stickiness::LbCookie {
                    max_age: *expiration_secs,
                },
                Some(PolicyKind::AppCookieStickiness { cookie_name }) => Stickiness::AppCookie {
                    name: cookie_name.clone(),
                },
                _ => Stickiness::None,
            };
            let route = Route {
                protocol: listener.protocol,
                idle_timeout: Duration::from_secs(lb.attributes.idle_timeout_secs.into()),
                balancing: lb.attributes.balancing.unwrap_or(Balancing::RoundRobin),
                stickiness,
                targets: Targets::new(targets),
                proxy_protocol: if listener.protocol.is_http() {
                    None
                } else {
                    proxy_protocol_for(lb, listener.instance_port)
                },
                metrics: Arc::clone(&metrics),
                log: Arc::clone(&log),
            };
            routes.insert(listener.port, Arc::new(route));
        }
    }
    for (key, (upstream, grace)) in upstreams.drain() {
        if !used.contains_key(&key) {
            upstream.retire(grace);
        }
    }
    *upstreams = used;
    config
        .metrics
        .retain(|name| state.load_balancers.keys().any(|n| n.as_str() == name));
    *log_targets = logs;
    Runtime { routes }
}

fn log_target(lb: &LoadBalancer, old: Option<&Arc<LogTarget>>) -> Arc<LogTarget> {
    let attr = &lb.attributes.access_log;
    let mut target = LogTarget::new(
        lb.name.as_str(),
        attr.enabled,
        attr.emit_interval,
        attr.s3_bucket_name.clone(),
        attr.s3_bucket_prefix.clone(),
    );
    if let Some(old) = old {
        target = target.with_followers_of(old);
    }
    Arc::new(target)
}

/// The PROXY protocol version an instance port asks for: a `ProxyProtocolPolicyType` policy
/// with `ProxyProtocol=true` among its backend policies (version 1, or 2 with fulcrum's
/// `ProxyProtocolVersion=2`).
fn proxy_protocol_for(lb: &LoadBalancer, instance_port: u16) -> Option<proxy_protocol::Version> {
    let names = lb.backend_policies.get(&instance_port)?;
    names
        .iter()
        .filter_map(|n| lb.policy(n))
        .find_map(|p| match &p.kind {
            PolicyKind::Other {
                type_name,
                attributes,
            } if type_name == "ProxyProtocolPolicyType" => {
                let value = |k: &str| {
                    attributes
                        .iter()
                        .find(|(a, _)| a == k)
                        .map(|(_, v)| v.as_str())
                };
                if !value("ProxyProtocol").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                    return None;
                }
                Some(match value("ProxyProtocolVersion") {
                    Some("2") => proxy_protocol::Version::V2,
                    _ => proxy_protocol::Version::V1,
                })
            }
            _ => None,
        })
}
