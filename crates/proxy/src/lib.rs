//! fulcrum's data plane. It turns each snapshot of the state into live listeners, TLS
//! certificates, instance pools and health checkers, and swaps them in atomically; requests
//! read the current runtime through one pointer and never wait on the store or the API.

#![forbid(unsafe_code)]

mod backend_tls;
mod body;
mod coalesce;
mod conn;
mod forward;
mod headers;
mod health;
mod listen;
mod observe;
mod proxy_protocol;
mod runtime;
mod sticky;
mod stream;
mod tls;
mod upstream;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use fulcrum_model::{InstanceId, LbName, Protocol, Snapshot};
use fulcrum_telemetry::access_log::{AccessLogSink, LogTarget};
use fulcrum_telemetry::metrics::GaugeSource;
use fulcrum_telemetry::{LbGauges, Registry};
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::watch;

pub use health::{HealthState, HealthStatus};
pub use sticky::StickinessKey;

use conn::ConnCount;
use health::HealthChecks;
use listen::RunningListener;
use runtime::Runtime;

/// How long after an instance changes state the health file is written.
const HEALTH_SAVE_DELAY: Duration = Duration::from_millis(250);
/// How often a listener that could not be opened is tried again.
const LISTENER_RETRY: Duration = Duration::from_secs(2);

/// Settings of the data plane that are not part of the replicated state.
#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// The addresses every listener binds, at the listener's port (`--bind`, repeatable).
    pub bind: Vec<IpAddr>,
    /// A client that has not finished its TLS handshake by then is disconnected.
    pub handshake_timeout: Duration,
    /// A request head must be complete this long after its first byte arrived.
    pub header_read_timeout: Duration,
    /// Connecting to an instance fails after this long (and the request is retried elsewhere).
    pub connect_timeout: Duration,
    /// How often the balancer pings an HTTP/2 client to see that it is still there; a client
    /// that does not answer within 20 s is disconnected. Pings are not activity for the idle
    /// timeout.
    pub http2_ping_interval: Duration,
    pub limits: Limits,
    /// Where the last known health of every instance is kept between runs, so that a restarted
    /// node serves from its first second; `None` keeps it in memory only.
    pub health_file: Option<PathBuf>,
    /// Authenticates the `AWSELB` cookies: the store's, so that every node sharing it honours
    /// the cookies of every other.
    pub stickiness_key: StickinessKey,
    /// Divides health-check intervals and timeouts. Always 1 in service: it exists so that
    /// tests can watch instances move in and out of service within ELB's limits in less time.
    pub health_check_time_scale: u32,
    /// Where each load balancer's metrics are counted (read by the Prometheus endpoint and the
    /// CloudWatch API).
    pub metrics: Arc<Registry>,
    /// Where access-log records go; `None` makes none.
    pub access_log: Option<AccessLogSink>,
}

/// Bounds on what one node takes on.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Client connections open on the node; more are refused (reset) at accept.
    pub max_connections: usize,
    /// Client connections open on one listener port.
    pub max_listener_connections: usize,
    /// Exchanges under way with one instance of one load balancer (HTTP requests, TCP streams),
    /// so connections in use; `0` for no limit.
    pub max_instance_connections: usize,
    /// Requests that may wait for a connection to a busy instance (ELB's surge queue); a request
    /// that finds the queue full is answered 503 at once and counted as spillover.
    pub instance_queue: usize,
    /// How long a request waits in that queue before it is answered 503.
    pub instance_queue_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 65_536,
            max_listener_connections: 65_536,
            max_instance_connections: 1024,
            instance_queue: 1024,
            instance_queue_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        DataPlaneConfig {
            bind: vec![IpAddr::from([0, 0, 0, 0])],
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
            http2_ping_interval: Duration::from_secs(30),
            limits: Limits::default(),
            health_file: None,
            stickiness_key: StickinessKey::random(),
            health_check_time_scale: 1,
            metrics: Arc::new(Registry::default()),
            access_log: None,
        }
    }
}

/// What every connection task shares.
pub(crate) struct Shared {
    pub(crate) config: DataPlaneConfig,
    pub(crate) runtime: ArcSwap<Runtime>,
    pub(crate) h1: http1::Builder,
    pub(crate) h2: http2::Builder<TokioExecutor>,
    /// Client connections open on the node, for `Limits::max_connections`.
    pub(crate) node_conns: Arc<ConnCount>,
    /// Client connections refused because a connection limit was reached.
    pub(crate) refused_connections: AtomicU64,
}

/// The state that changes only when a snapshot is applied.
struct Control {
    health: HealthChecks,
    upstreams: runtime::Upstreams,
    listeners: BTreeMap<u16, RunningListener>,
    tls: tls::TlsCache,
    backend_tls: backend_tls::BackendTlsCache,
    log_targets: runtime::LogTargets,
    /// Listeners that could not be started, by port, with the reason.
    failed: BTreeMap<u16, String>,
    /// Listening sockets handed over by the process this one replaces, used by the first apply.
    inherited: HashMap<SocketAddr, std::net::TcpListener>,
}

/// The data plane of one node.
#[derive(Clone)]
pub struct DataPlane {
    shared: Arc<Shared>,
    control: Arc<Mutex<Control>>,
    applied: Arc<AtomicBool>,
    applied_revision: Arc<AtomicU64>,
}

impl DataPlane {
    pub fn new(config: DataPlaneConfig) -> Result<DataPlane, fulcrum_tls::TlsError> {
        let mut h1 = http1::Builder::new();
        // No hyper header read timeout: hyper's runs between keep-alive requests too, and the
        // connection's watchdog (`conn`) times heads from their first byte instead.
        h1.timer(TokioTimer::new())
            .max_buf_size(64 * 1024)
            .max_header_size(64 * 1024)
            .max_headers(128);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(128)
            .max_header_list_size(64 * 1024)
            .max_pending_accept_reset_streams(20)
            .max_local_error_reset_streams(Some(64))
            .keep_alive_interval(Some(config.http2_ping_interval));
        let shared = Arc::new(Shared {
            config: config.clone(),
            runtime: ArcSwap::from_pointee(Runtime::default()),
            h1,
            h2,
            node_conns: Arc::new(ConnCount::default()),
            refused_connections: AtomicU64::new(0),
        });
        let control = Control {
            health: HealthChecks::new(config.health_check_time_scale, config.health_file.clone()),
            upstreams: HashMap::new(),
            listeners: BTreeMap::new(),
            tls: tls::TlsCache::new()?,
            backend_tls: backend_tls::BackendTlsCache::default(),
            log_targets: HashMap::new(),
            failed: BTreeMap::new(),
            inherited: HashMap::new(),
        };
        config.metrics.set_gauge_source(Arc::new(Gauges {
            shared: Arc::downgrade(&shared),
        }));
        Ok(DataPlane {
            shared,
            control: Arc::new(Mutex::new(control)),
            applied: Arc::new(AtomicBool::new(false)),
            applied_revision: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Makes `snapshot` live: health checkers, instance pools and certificates first, then the
    /// routing table in one swap, then listeners opened and closed. Must run inside a Tokio
    /// runtime.
    pub fn apply(&self, snapshot: &Snapshot) {
        let mut control = self.control.lock().unwrap_or_else(|e| e.into_inner());
        let control = &mut *control;
        control
            .health
            .reconcile(&snapshot.state, &mut control.backend_tls, &mut control.tls);
        let runtime = runtime::compile(
            snapshot,
            &control.health,
            &mut control.upstreams,
            &mut control.backend_tls,
            &mut control.tls,
            &mut control.log_targets,
            &self.shared.config,
        );
        control.backend_tls.forget_unused();
        let mut wanted_tls = control.tls.wanted(&snapshot.state);

        // Listeners that went away, or changed between plain and TLS, close first so that
        // their port is free to be bound again below.
        let wanted: BTreeMap<u16, Protocol> = runtime
            .routes
            .iter()
            .map(|(port, route)| (*port, route.protocol))
            .collect();
        let gone: Vec<u16> = control
            .listeners
            .iter()
            .filter(|(port, l)| wanted.get(port) != Some(&l.protocol))
            .map(|(port, _)| *port)
            .collect();
        for port in gone {
            if let Some(listener) = control.listeners.remove(&port) {
                tracing::info!(event = "listener_closed", port, "listener closed");
                drop(listener.stop());
            }
        }

        self.shared.runtime.store(Arc::new(runtime));

        control.failed.clear();
        for (port, protocol) in wanted {
            let addrs: Vec<SocketAddr> = self
                .shared
                .config
                .bind
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect();
            let wanted = if protocol.is_tls() {
                match wanted_tls.remove(&port) {
                    Some(Ok(w)) => Some(w),
                    Some(Err(why)) => {
                        control.failed.insert(port, why);
                        continue;
                    }
                    None => continue,
                }
            } else {
                None
            };
            if let Some(running) = control.listeners.get(&port) {
                // Rotation or a policy change: new handshakes see it, open connections keep theirs.
                if let (Some(tls), Some(wanted)) = (&running.tls, wanted) {
                    if let Err(e) = control.tls.update(port, tls, wanted) {
                        control.failed.insert(port, e.to_string());
                    }
                }
                continue;
            }
            let tls = match wanted.map(|w| control.tls.start(w)).transpose() {
                Ok(tls) => tls,
                Err(e) => {
                    control.failed.insert(port, e.to_string());
                    continue;
                }
            };
            let started = RunningListener::start(
                Arc::clone(&self.shared),
                &addrs,
                protocol,
                tls,
                &mut control.inherited,
            );
            match started {
                Ok(listener) => {
                    tracing::info!(event = "listener_opened", port, ?addrs, %protocol, "listener open");
                    control.listeners.insert(port, listener);
                }
                Err((addr, e)) => {
                    tracing::error!(event = "listener_failed", port, %addr, error = %e, "cannot open listener");
                    control
                        .failed
                        .insert(port, format!("cannot listen on {addr}: {e}"));
                }
            }
        }
        // Sockets handed over for listeners this state no longer has are closed.
        control.inherited.clear();
        self.applied_revision
            .store(snapshot.revision, Ordering::Release);
        self.applied.store(true, Ordering::Release);
    }

    /// Applies every snapshot the watch delivers, from the current one on, until the watch's
    /// sender is dropped. While a listener cannot be opened (its port held by another process),
    /// the same snapshot is applied again every few seconds.
    pub fn follow(
        &self,
        mut snapshots: watch::Receiver<Arc<Snapshot>>,
    ) -> tokio::task::JoinHandle<()> {
        if self.shared.config.health_file.is_some() {
            self.keep_health_saved();
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let snapshot = Arc::clone(&snapshots.borrow_and_update());
                // Compiling a large state takes milliseconds: off the workers that carry traffic.
                let applier = this.clone();
                let applied = tokio::task::spawn_blocking(move || applier.apply(&snapshot)).await;
                if let Err(e) = applied {
                    tracing::error!(error = %e, "applying a state failed");
                }
                let retry = !this.lock().failed.is_empty();
                tokio::select! {
                    changed = snapshots.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(LISTENER_RETRY), if retry => {}
                }
            }
        })
    }

    /// Writes the health file shortly after any instance changes state (a burst of changes is
    /// one write), off the traffic workers.
    fn keep_health_saved(&self) {
        let changed = self.lock().health.changed();
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                changed.notified().await;
                tokio::time::sleep(HEALTH_SAVE_DELAY).await;
                let saver = this.clone();
                let _ = tokio::task::spawn_blocking(move || saver.save_health()).await;
            }
        });
    }

    /// Whether a state has been applied (what `/healthz` reports).
    pub fn is_ready(&self) -> bool {
        self.applied.load(Ordering::Acquire)
    }

    /// The revision of the state in force.
    pub fn applied_revision(&self) -> u64 {
        self.applied_revision.load(Ordering::Acquire)
    }

    /// Listeners the last apply could not open, by port.
    pub fn failed_listeners(&self) -> BTreeMap<u16, String> {
        self.lock().failed.clone()
    }

    /// The health of a registered instance of a load balancer, if it is being checked.
    pub fn instance_health(&self, lb: &LbName, instance: &InstanceId) -> Option<HealthStatus> {
        self.lock()
            .health
            .health(&(lb.clone(), instance.clone()))
            .map(|h| h.status())
    }

    /// Every checked instance whose health is known, with it: what this node tells the other
    /// nodes of a fleet.
    pub fn health_view(&self) -> Vec<((LbName, InstanceId), HealthStatus)> {
        self.lock().health.known()
    }

    /// Listening sockets handed over by the process this one replaces (see `fulcrum serve`'s
    /// upgrade): the first apply listens on them instead of binding. Call before `follow`.
    pub fn inherit(&self, sockets: Vec<std::net::TcpListener>) {
        let mut control = self.lock();
        for socket in sockets {
            match socket.local_addr() {
                Ok(addr) => {
                    control.inherited.insert(addr, socket);
                }
                Err(e) => tracing::warn!(error = %e, "a handed-over socket has no address"),
            }
        }
    }

    /// Duplicates of every listening socket, for a process that takes over from this one. Both
    /// processes accept from the same sockets until this one stops: no connection is refused.
    pub fn listening_sockets(&self) -> std::io::Result<Vec<OwnedFd>> {
        let control = self.lock();
        control
            .listeners
            .values()
            .flat_map(|l| l.sockets())
            .map(|s| s.as_fd().try_clone_to_owned())
            .collect()
    }

    /// What keeps the node from serving, in words; empty when it can serve: a state applied,
    /// every listener open, and the health of every instance known (from before a restart, or
    /// from a first check).
    pub fn waiting_for(&self) -> Vec<String> {
        if !self.is_ready() {
            return vec!["state not applied yet".to_owned()];
        }
        let control = self.lock();
        let mut reasons: Vec<String> = control
            .failed
            .iter()
            .map(|(port, why)| format!("listener {port}: {why}"))
            .collect();
        let unknown = control.health.unknown();
        if unknown > 0 {
            reasons.push(format!(
                "health of {unknown} instance(s) not known yet: first checks under way"
            ));
        }
        reasons
    }

    /// Writes the health of every instance to the health file now (before a hand-over, say).
    pub fn save_health(&self) {
        let saved = self.lock().health.to_save();
        if let Some(saved) = saved {
            saved.write();
        }
    }

    /// For one load balancer: requests waiting now for a turn with a busy instance
    /// (`SurgeQueueLength`) and requests refused for want of one so far (`SpilloverCount`),
    /// over its instances.
    pub fn surge_counts(&self, lb: &LbName) -> (usize, u64) {
        self.lock()
            .upstreams
            .iter()
            .filter(|((name, _, _), _)| name == lb)
            .map(|(_, (upstream, _))| upstream.surge())
            .fold((0, 0), |(q, s), (dq, ds)| (q + dq, s + ds))
    }

    /// The access-log target of a load balancer in the state in force (to follow its records
    /// live).
    pub fn log_target(&self, load_balancer: &str) -> Option<Arc<LogTarget>> {
        self.lock()
            .log_targets
            .iter()
            .find(|(name, _)| name.as_str() == load_balancer)
            .map(|(_, t)| Arc::clone(t))
    }

    /// Client connections open on the node, and those refused by a connection limit so far.
    pub fn connection_counts(&self) -> (usize, u64) {
        (
            self.shared.node_conns.open(),
            self.shared.refused_connections.load(Ordering::Relaxed),
        )
    }

    /// Stops accepting on every listener, lets in-flight requests finish, and returns once
    /// every client connection has closed or `deadline` has passed. Returns the number of
    /// connections still open at the deadline.
    pub async fn shutdown(&self, deadline: Duration) -> usize {
        self.save_health();
        let counts: Vec<_> = {
            let mut control = self.lock();
            std::mem::take(&mut control.listeners)
                .into_values()
                .map(RunningListener::stop)
                .collect()
        };
        let all_closed = async {
            for c in &counts {
                c.all_closed().await;
            }
        };
        let _ = tokio::time::timeout(deadline, all_closed).await;
        counts.iter().map(|c| c.open()).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The gauges of every load balancer, read from the runtime in force (no lock). Holds the data
/// plane weakly: the registry outlives it in tests that make several.
struct Gauges {
    shared: std::sync::Weak<Shared>,
}

impl GaugeSource for Gauges {
    fn gauges(&self) -> Vec<LbGauges> {
        let Some(shared) = self.shared.upgrade() else {
            return Vec::new();
        };
        let runtime = shared.runtime.load();
        let mut by_lb: BTreeMap<&str, (LbGauges, Vec<*const upstream::Upstream>)> = BTreeMap::new();
        for route in runtime.routes.values() {
            let name = &*route.log.load_balancer;
            let (gauges, seen) = by_lb.entry(name).or_insert_with(|| {
                // Every listener of a load balancer has the same instances: count them once.
                let healthy = route
                    .targets
                    .all
                    .iter()
                    .filter(|t| t.health.is_in_service())
                    .count() as u64;
                let gauges = LbGauges {
                    load_balancer: name.to_owned(),
                    healthy_hosts: healthy,
                    unhealthy_hosts: route.targets.all.len() as u64 - healthy,
                    surge_queue_length: 0,
                };
                (gauges, Vec::new())
            });
            // Listeners on the same instance port share their instances' queues.
            for target in &route.targets.all {
                let ptr = Arc::as_ptr(&target.upstream);
                if !seen.contains(&ptr) {
                    seen.push(ptr);
                    gauges.surge_queue_length += target.upstream.surge().0 as u64;
                }
            }
        }
        by_lb.into_values().map(|(g, _)| g).collect()
    }
}
