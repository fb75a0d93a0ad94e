//! Active health checks: one task per (load balancer, instance), probing the instance's health
//! check target at the configured interval and moving it in and out of service after the
//! configured number of consecutive results.
//!
//! A node that restarts must not answer 503 for `HealthyThreshold x Interval` (five minutes
//! with ELB's defaults) while its instances are up. So the last known health of every instance
//! is kept in a file beside the store and used from the first request; every checker probes
//! within a second of start; and at start the first check alone decides, for an instance the
//! node knows nothing about (one passing check rather than `HealthyThreshold`, as Envoy does for
//! new hosts) and for one whose saved state it carried over (so that an instance that went away
//! while the node was down does not keep getting traffic for `UnhealthyThreshold x Interval`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fulcrum_model::{HealthCheck, HealthTarget, InstanceId, LbName, State};
use futures_util::FutureExt;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::backend_tls::{BackendTls, BackendTlsCache};
use crate::tls::TlsCache;

/// ELB's instance states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// False until a first check ends, for an instance whose health was unknown at start.
    known: AtomicBool,
    status: Mutex<HealthStatus>,
    /// Told when the instance goes in or out of service, so that the health file is rewritten.
    changed: Arc<Notify>,
}

impl InstanceHealth {
    fn new(status: HealthStatus, known: bool, changed: Arc<Notify>) -> Self {
        InstanceHealth {
            in_service: AtomicBool::new(status.state == HealthState::InService),
            known: AtomicBool::new(known),
            status: Mutex::new(status),
            changed,
        }
    }

    pub(crate) fn is_in_service(&self) -> bool {
        self.in_service.load(Ordering::Relaxed)
    }

    fn is_known(&self) -> bool {
        self.known.load(Ordering::Relaxed)
    }

    pub(crate) fn status(&self) -> HealthStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, status: HealthStatus) {
        let in_service = status.state == HealthState::InService;
        let was = self.in_service.swap(in_service, Ordering::Relaxed);
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
        let was_known = self.known.swap(true, Ordering::Relaxed);
        if was != in_service || !was_known {
            self.changed.notify_one();
        }
    }
}

/// One instance's health as the health file keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedInstance {
    lb: LbName,
    instance: InstanceId,
    /// The address checked: a state saved for another address says nothing of this one.
    addr: SocketAddr,
    state: HealthState,
    reason_code: String,
    description: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct HealthFile {
    instances: Vec<SavedInstance>,
}

/// The health of every instance, ready to be written to the health file.
pub(crate) struct SavedHealth {
    path: PathBuf,
    file: HealthFile,
}

impl SavedHealth {
    /// Writes the file whole (a temporary file renamed over it), so that a crash mid-write
    /// leaves the previous version.
    pub(crate) fn write(&self) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.path.with_extension("tmp");
        // Load balancer names and instance addresses are the owner's business only, as the
        // store's are.
        let written = serde_json::to_vec(&self.file)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?
                    .write_all(&json)
            })
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        match written {
            Ok(()) => {
                tracing::debug!(path = %self.path.display(), instances = self.file.instances.len(), "health saved")
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot save the health of instances")
            }
        }
    }
}

/// Reads the health file; a missing or unreadable one means nothing is known.
fn load(path: &std::path::Path) -> HashMap<HealthKey, SavedInstance> {
    let file: HealthFile = match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "health file unreadable: starting with no known health");
                return HashMap::new();
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HashMap::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the health file");
            return HashMap::new();
        }
    };
    file.instances
        .into_iter()
        .map(|i| ((i.lb.clone(), i.instance.clone()), i))
        .collect()
}

fn reason_code(code: &str) -> &'static str {
    match code {
        "Instance" => "Instance",
        "N/A" => "N/A",
        _ => "ELB",
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
    file: Option<PathBuf>,
    /// What the health file said at start, until the first reconcile has used it.
    saved: HashMap<HealthKey, SavedInstance>,
    /// Whether the first state has been reconciled (the node has started).
    started: bool,
    changed: Arc<Notify>,
}

impl HealthChecks {
    pub(crate) fn new(time_scale: u32, file: Option<PathBuf>) -> Self {
        let saved = file.as_deref().map(load).unwrap_or_default();
        if !saved.is_empty() {
            tracing::info!(
                instances = saved.len(),
                "health of instances carried over from the last run"
            );
        }
        HealthChecks {
            checkers: HashMap::new(),
            time_scale: time_scale.max(1),
            file,
            saved,
            started: false,
            changed: Arc::new(Notify::new()),
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
        let starting = !self.started;
        for (key, probe) in wanted {
            let (health, first_pass_enough) = match self.checkers.get(&key) {
                Some(c) if c.probe == probe => continue,
                Some(c) => (Arc::clone(&c.health), false),
                None => self.first_health(&key, &probe, starting),
            };
            let task = tokio::spawn(run_checker(
                key.clone(),
                probe.clone(),
                Arc::clone(&health),
                self.time_scale,
                first_pass_enough,
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
        self.started = true;
        self.saved.clear();
    }

    /// The health a new checker starts from, and whether its first check decides alone: at
    /// start, what the health file says for the same address (or unknown until the first check
    /// ends), then the first check decides; for an instance registered later, ELB's
    /// "registration in progress" and its thresholds.
    fn first_health(
        &self,
        key: &HealthKey,
        probe: &Probe,
        starting: bool,
    ) -> (Arc<InstanceHealth>, bool) {
        let changed = Arc::clone(&self.changed);
        if starting {
            if let Some(saved) = self.saved.get(key).filter(|s| s.addr == probe.addr) {
                let status = HealthStatus {
                    state: saved.state,
                    reason_code: reason_code(&saved.reason_code),
                    description: saved.description.clone(),
                };
                // Carried over until the first check, which then decides alone: an instance
                // that went away while the node was down is taken out within about a second.
                return (Arc::new(InstanceHealth::new(status, true, changed)), true);
            }
            let health = InstanceHealth::new(HealthStatus::registering(), false, changed);
            return (Arc::new(health), true);
        }
        let health = InstanceHealth::new(HealthStatus::registering(), true, changed);
        (Arc::new(health), false)
    }

    /// Instances whose health is not known yet (first checks of a starting node under way).
    pub(crate) fn unknown(&self) -> usize {
        self.checkers
            .values()
            .filter(|c| !c.health.is_known())
            .count()
    }

    /// Told whenever an instance goes in or out of service.
    pub(crate) fn changed(&self) -> Arc<Notify> {
        Arc::clone(&self.changed)
    }

    /// The health of every known instance, for the health file (if there is one).
    pub(crate) fn to_save(&self) -> Option<SavedHealth> {
        let path = self.file.clone()?;
        let instances = self
            .checkers
            .iter()
            .filter(|(_, c)| c.health.is_known())
            .map(|((lb, instance), c)| {
                let status = c.health.status();
                SavedInstance {
                    lb: lb.clone(),
                    instance: instance.clone(),
                    addr: c.probe.addr,
                    state: status.state,
                    reason_code: status.reason_code.to_owned(),
                    description: status.description,
                }
            })
            .collect();
        Some(SavedHealth {
            path,
            file: HealthFile { instances },
        })
    }

    pub(crate) fn health(&self, key: &HealthKey) -> Option<Arc<InstanceHealth>> {
        self.checkers.get(key).map(|c| Arc::clone(&c.health))
    }

    /// Every instance whose health is known, with it.
    pub(crate) fn known(&self) -> Vec<(HealthKey, HealthStatus)> {
        self.checkers
            .iter()
            .filter(|(_, c)| c.health.is_known())
            .map(|(key, c)| (key.clone(), c.health.status()))
            .collect()
    }
}

/// Checks spread their first probes over this much time (or the interval, when shorter), so
/// that a node with 10,000 instances does not open 10,000 connections in one millisecond.
const FIRST_PROBE_SPREAD: Duration = Duration::from_secs(1);

async fn run_checker(
    (lb, instance): HealthKey,
    probe: Probe,
    health: Arc<InstanceHealth>,
    time_scale: u32,
    first_pass_enough: bool,
) {
    let check = &probe.check;
    let interval = Duration::from_secs(check.interval_secs.into()) / time_scale;
    let timeout = Duration::from_secs(check.timeout_secs.into()) / time_scale;
    let spread = interval.min(FIRST_PROBE_SPREAD);
    let first = spread.mul_f64(rand::random::<f64>());
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut passes, mut failures) = (0u32, 0u32);
    let mut first_result = true;
    loop {
        ticker.tick().await;
        let result = tokio::time::timeout(timeout, probe_once(&probe))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", check.timeout_secs)));
        let in_service = health.is_in_service();
        // At start the first check decides alone (see the module's comment).
        let judged_now = std::mem::take(&mut first_result) && first_pass_enough;
        match result {
            Ok(()) => {
                passes += 1;
                failures = 0;
                if !in_service && (passes >= check.healthy_threshold || judged_now) {
                    tracing::info!(
                        event = "instance_in_service",
                        load_balancer = %lb,
                        instance = %instance,
                        addr = %probe.addr,
                        "instance is InService"
                    );
                    health.set(HealthStatus::in_service());
                }
            }
            Err(why) => {
                failures += 1;
                passes = 0;
                if failures >= check.unhealthy_threshold || judged_now {
                    if in_service || judged_now {
                        tracing::warn!(
                            event = "instance_out_of_service",
                            load_balancer = %lb,
                            instance = %instance,
                            addr = %probe.addr,
                            reason = %why,
                            "instance is OutOfService"
                        );
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

/// Sends `GET path` with hyper's HTTP/1.1 client over the connection already open (TCP or
/// TLS) and passes on a `200` status, as ELB does. The body is not read: the response's head
/// decides, and the connection (`Connection: close`) is dropped with it.
async fn http_probe<S>(stream: &mut S, addr: SocketAddr, path: &str) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "fulcrum-health-checker/1.0")
        .header(http::header::ACCEPT, "*/*")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| format!("the health check path {path:?} is not a valid request target"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| describe_http_error(&e))?;
    let send = sender.send_request(request);
    tokio::pin!(conn, send);
    let response = tokio::select! {
        biased;
        response = &mut send => response,
        ended = &mut conn => match (&mut send).now_or_never() {
            // The head came before the connection ended (a body cut short, say).
            Some(response) => response,
            None => {
                return Err(match ended {
                    Ok(()) => "no HTTP response".to_string(),
                    Err(e) => describe_http_error(&e),
                })
            }
        },
    }
    .map_err(|e| describe_http_error(&e))?;
    match response.status() {
        http::StatusCode::OK => Ok(()),
        status => Err(format!("HTTP status {}", status.as_u16())),
    }
}

/// A readable reason for DescribeInstanceHealth: "no HTTP response" when the instance closed
/// the connection or answered something that is not HTTP/1.x, otherwise hyper's error and its
/// cause ("connection error: Connection reset by peer (os error 104)").
fn describe_http_error(e: &hyper::Error) -> String {
    if e.is_parse() || e.is_incomplete_message() || e.is_canceled() {
        return "no HTTP response".to_string();
    }
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Probes an instance that answers `answer` (then closes) and returns the probe's result and
    /// the request the instance saw.
    async fn probe_against(answer: &'static [u8]) -> (Result<(), String>, String) {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let instance = tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match server.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = server.write_all(answer).await;
            let _ = server.shutdown().await;
            String::from_utf8_lossy(&request).into_owned()
        });
        let addr: SocketAddr = "192.0.2.7:8080".parse().unwrap();
        let result = http_probe(&mut client, addr, "/healthz?x=1").await;
        drop(client);
        (result, instance.await.unwrap())
    }

    #[tokio::test]
    async fn http_probe_passes_on_200_only() {
        let (ok, request) =
            probe_against(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").await;
        assert_eq!(ok, Ok(()));
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.starts_with("get /healthz?x=1 http/1.1\r\n"),
            "{request}"
        );
        for header in [
            "host: 192.0.2.7:8080\r\n",
            "user-agent: fulcrum-health-checker/1.0\r\n",
            "connection: close\r\n",
        ] {
            assert!(lower.contains(header), "{header:?} in {request}");
        }

        let (unavailable, _) =
            probe_against(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(unavailable, Err("HTTP status 503".to_string()));
        let (redirect, _) = probe_against(b"HTTP/1.0 301 Moved\r\n\r\n").await;
        assert_eq!(redirect, Err("HTTP status 301".to_string()));
        // A body that never ends does not matter: the status decides.
        let (streaming, _) =
            probe_against(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel").await;
        assert_eq!(streaming, Ok(()));
    }

    #[tokio::test]
    async fn http_probe_without_an_http_answer() {
        for answer in [&b""[..], b"SSH-2.0-OpenSSH_9.6\r\n", b"HTTP/1.1 20"] {
            let (result, _) = probe_against(answer).await;
            assert_eq!(
                result,
                Err("no HTTP response".to_string()),
                "{:?}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}
