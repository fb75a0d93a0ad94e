//! Active health checks: one task per (load balancer, instance), probing the instance's health
//! check target at the configured interval and moving it in and out of service after the
//! configured number of consecutive results.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fulcrum_model::{HealthCheck, HealthTarget, InstanceId, LbName, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::backend_tls::{BackendTls, BackendTlsCache};
use crate::tls::TlsCache;

/// ELB's instance states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    InService,
    OutOfService,
    Unknown,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::InService => "InService",
            HealthState::OutOfService => "OutOfService",
            HealthState::Unknown => "Unknown",
        }
    }
}

/// What `DescribeInstanceHealth` reports for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthStatus {
    pub state: HealthState,
    /// `ELB`, `Instance` or `N/A`, as ELB reports them.
    pub reason_code: &'static str,
    pub description: String,
}

impl HealthStatus {
    /// A new instance, not yet through `HealthyThreshold` checks.
    pub fn registering() -> Self {
        HealthStatus {
            state: HealthState::OutOfService,
            reason_code: "ELB",
            description: "Instance registration is still in progress.".into(),
        }
    }

    fn in_service() -> Self {
        HealthStatus {
            state: HealthState::InService,
            reason_code: "N/A",
            description: "N/A".into(),
        }
    }

    fn failed(why: &str) -> Self {
        HealthStatus {
            state: HealthState::OutOfService,
            reason_code: "Instance",
            description: format!(
                "Instance has failed at least the UnhealthyThreshold number of health checks \
                 consecutively. Last failure: {why}"
            ),
        }
    }

    /// For an instance id that no longer resolves to an address.
    pub fn unknown(description: &str) -> Self {
        HealthStatus {
            state: HealthState::Unknown,
            reason_code: "ELB",
            description: description.into(),
        }
    }
}

/// The live health of one instance of one load balancer. The data plane reads `in_service` on
/// every pick, so it is an atomic beside the fuller status.
pub(crate) struct InstanceHealth {
    in_service: AtomicBool,
    status: Mutex<HealthStatus>,
}

impl InstanceHealth {
    fn new() -> Self {
        InstanceHealth {
            in_service: AtomicBool::new(false),
            status: Mutex::new(HealthStatus::registering()),
        }
    }

    pub(crate) fn is_in_service(&self) -> bool {
        self.in_service.load(Ordering::Relaxed)
    }

    pub(crate) fn status(&self) -> HealthStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, status: HealthStatus) {
        self.in_service
            .store(status.state == HealthState::InService, Ordering::Relaxed);
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

/// Everything a checker needs; a change to any of it restarts the checker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Probe {
    addr: SocketAddr,
    check: HealthCheck,
    /// For HTTPS and SSL targets: the TLS that traffic to that instance port uses, or why it
    /// cannot be set up.
    tls: Option<Result<BackendTls, String>>,
}

struct Checker {
    probe: Probe,
    health: Arc<InstanceHealth>,
    task: JoinHandle<()>,
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) type HealthKey = (LbName, InstanceId);

/// The set of running checkers, reconciled with each new state.
pub(crate) struct HealthChecks {
    checkers: HashMap<HealthKey, Checker>,
    /// Divides intervals and timeouts; 1 in production (see `DataPlaneConfig`).
    time_scale: u32,
}

impl HealthChecks {
    pub(crate) fn new(time_scale: u32) -> Self {
        HealthChecks {
            checkers: HashMap::new(),
            time_scale: time_scale.max(1),
        }
    }

    /// Starts, restarts and stops checkers so that there is one per registered instance with a
    /// known address. A checker whose target or timing changes keeps its instance's state.
    pub(crate) fn reconcile(
        &mut self,
        state: &State,
        backend: &mut BackendTlsCache,
        certs: &mut TlsCache,
    ) {
        let mut wanted: HashMap<HealthKey, Probe> = HashMap::new();
        for lb in state.load_balancers.values() {
            let target = &lb.health_check.target;
            let tls = match target {
                HealthTarget::Https { port, .. } => {
                    Some(backend.for_port(state, lb, *port, true, certs))
                }
                HealthTarget::Ssl { port } => {
                    Some(backend.for_port(state, lb, *port, false, certs))
                }
                _ => None,
            };
            for id in &lb.instances {
                let Some(ip) = state.instance_address(id) else {
                    continue;
                };
                let probe = Probe {
                    addr: SocketAddr::new(ip, target.port()),
                    check: lb.health_check.clone(),
                    tls: tls.clone(),
                };
                wanted.insert((lb.name.clone(), id.clone()), probe);
            }
        }
        self.checkers.retain(|key, _| wanted.contains_key(key));
        for (key, probe) in wanted {
            let health = match self.checkers.get(&key) {
                Some(c) if c.probe == probe => continue,
                Some(c) => Arc::clone(&c.health),
                None => Arc::new(InstanceHealth::new()),
            };
            let task = tokio::spawn(run_checker(
                probe.clone(),
                Arc::clone(&health),
                self.time_scale,
            ));
            self.checkers.insert(
                key,
                Checker {
                    probe,
                    health,
                    task,
                },
            );
        }
    }

    pub(crate) fn health(&self, key: &HealthKey) -> Option<Arc<InstanceHealth>> {
        self.checkers.get(key).map(|c| Arc::clone(&c.health))
    }
}

async fn run_checker(probe: Probe, health: Arc<InstanceHealth>, time_scale: u32) {
    let check = &probe.check;
    let interval = Duration::from_secs(check.interval_secs.into()) / time_scale;
    let timeout = Duration::from_secs(check.timeout_secs.into()) / time_scale;
    // Checkers started together (a node starting, a large registration) spread their first
    // probes over up to two seconds instead of opening every connection at once.
    let spread = interval.min(Duration::from_secs(2));
    let first = spread.mul_f64(rand::random::<f64>());
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut passes, mut failures) = (0u32, 0u32);
    loop {
        ticker.tick().await;
        let result = tokio::time::timeout(timeout, probe_once(&probe))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", check.timeout_secs)));
        let in_service = health.is_in_service();
        match result {
            Ok(()) => {
                passes += 1;
                failures = 0;
                if !in_service && passes >= check.healthy_threshold {
                    tracing::info!(addr = %probe.addr, "instance is InService");
                    health.set(HealthStatus::in_service());
                }
            }
            Err(why) => {
                failures += 1;
                passes = 0;
                if failures >= check.unhealthy_threshold {
                    if in_service {
                        tracing::warn!(addr = %probe.addr, %why, "instance is OutOfService");
                    }
                    health.set(HealthStatus::failed(&why));
                }
            }
        }
    }
}

/// One probe of a target: Ok when the instance passes. A connection is a pass for `TCP`, a
/// handshake (with the backend policy's checks) for `SSL`, a `200` for `HTTP` and `HTTPS`.
async fn probe_once(probe: &Probe) -> Result<(), String> {
    let addr = probe.addr;
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let path = match &probe.check.target {
        HealthTarget::Http { path, .. } | HealthTarget::Https { path, .. } => Some(path),
        HealthTarget::Tcp { .. } | HealthTarget::Ssl { .. } => None,
    };
    match &probe.tls {
        None => match path {
            Some(path) => http_probe(&mut stream, addr, path).await,
            None => Ok(()),
        },
        Some(Err(why)) => Err(format!("TLS to instances is misconfigured: {why}")),
        Some(Ok(tls)) => {
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.config));
            let mut stream = connector
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            match path {
                Some(path) => http_probe(&mut stream, addr, path).await,
                None => Ok(()),
            }
        }
    }
}

/// Sends `GET path` and passes on a `200` status line, as ELB does.
async fn http_probe<S>(stream: &mut S, addr: SocketAddr, path: &str) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: fulcrum-health-checker/1.0\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 256];
    let mut len = 0;
    while !buf[..len].contains(&b'\n') && len < buf.len() {
        let n = stream
            .read(&mut buf[len..])
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let line = String::from_utf8_lossy(&buf[..len]);
    let status = line.split_ascii_whitespace().nth(1).unwrap_or("");
    if line.starts_with("HTTP/1.") && status == "200" {
        Ok(())
    } else if line.starts_with("HTTP/1.") {
        Err(format!("HTTP status {status}"))
    } else {
        Err("no HTTP response".into())
    }
}
