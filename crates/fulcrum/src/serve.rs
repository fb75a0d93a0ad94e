//! `fulcrum serve`: opens the store, runs the data plane on every state it publishes, serves the
//! API, and drains on SIGTERM. A second `serve` on the same data dir takes over the sockets of
//! the first (see `upgrade`); SIGHUP re-reads the store.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::os::fd::AsFd;

use anyhow::{bail, Context};
use clap::Args;
use fulcrum_api::{Api, ApiLimits, Pause};
use fulcrum_control::Control;
use fulcrum_proxy::{DataPlane, DataPlaneConfig, Limits, StickinessKey};

use crate::api_tls::ApiTlsMode;
use fulcrum_store::Store;
use fulcrum_telemetry::Registry;
use tokio::net::UnixStream;
use tokio::signal::unix::{signal, SignalKind};

use crate::upgrade::{self, Answer};

mod access_logs;
mod fleet;
mod store_args;
mod vip;

pub use store_args::StoreArgs;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where the state (SQLite, or the local copy of a fleet's etcd) and the master key live.
    #[arg(long, default_value = "./fulcrum-data", env = "FULCRUM_DATA_DIR")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub fleet: fleet::FleetArgs,
    #[command(flatten)]
    pub vip: vip::VipArgs,
    /// Address of the control API, the console and /healthz.
    #[arg(long, default_value = "127.0.0.1:9900")]
    pub api: SocketAddr,
    /// TLS for the API: `auto` is plain HTTP on loopback and TLS anywhere else (self-signed,
    /// its CA written to DIR/api-ca.pem, unless --api-tls-cert is given); `self-signed` is TLS
    /// on loopback too; `off` is plain HTTP, refused off loopback.
    #[arg(long, value_enum, default_value_t = ApiTlsMode::Auto)]
    pub api_tls: ApiTlsMode,
    /// The API's certificate: a PEM file (with --api-tls-key), or the name of a certificate
    /// uploaded to fulcrum.
    #[arg(long)]
    pub api_tls_cert: Option<String>,
    /// The private key (PEM file) of --api-tls-cert.
    #[arg(long)]
    pub api_tls_key: Option<PathBuf>,
    /// Address that load balancer listeners bind to, at each listener's port; repeatable (an
    /// IPv4 and an IPv6 address, say). `::` alone is dual-stack.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: Vec<IpAddr>,
    /// What DescribeLoadBalancers reports as each load balancer's DNSName, the name clients
    /// should use: a host name (a fleet's round-robin name) or address; `{name}` in it stands
    /// for the load balancer's name (`{name}.lb.example.com`). Defaults to the floating
    /// address (--vip), else the --bind address when it is a specific one, else localhost.
    #[arg(long, value_name = "HOST")]
    pub dns_name: Option<String>,
    /// The region that clients sign requests for; ARNs use it.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Also start two demo instances and a load balancer `demo` (HTTP 8080, HTTPS 8443).
    #[arg(long)]
    pub demo: bool,
    /// Worker threads; defaults to the CPUs this process may run on.
    #[arg(long)]
    pub workers: Option<usize>,
    /// On SIGTERM, how long in-flight requests may take to finish, in seconds.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
    /// A client that has not finished its TLS handshake by then is disconnected, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub handshake_timeout: u64,
    /// A request head must be complete this long after its first byte, in seconds (slowloris).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_read_timeout: u64,
    /// How often HTTP/2 clients are pinged, in seconds; pings are not activity for the idle
    /// timeout.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http2_ping_interval: u64,
    /// Client connections open on the node at most; more are refused. Defaults to a third of
    /// the open files limit.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Client connections open on one listener port at most; defaults to --max-connections.
    #[arg(long)]
    pub max_listener_connections: Option<usize>,
    /// Exchanges under way with one instance of a load balancer at most (0: no limit).
    #[arg(long, default_value_t = 1024)]
    pub max_instance_connections: usize,
    /// Requests that may wait for a busy instance (ELB's surge queue); more get 503 at once.
    #[arg(long, default_value_t = 1024)]
    pub instance_queue: usize,
    /// How long a request may wait in that queue before it gets 503, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub instance_queue_timeout: u64,
    /// API connections open at once at most.
    #[arg(long, default_value_t = 256)]
    pub api_max_connections: usize,
    /// When taking over from a running `fulcrum serve` on the same data dir (an upgrade): how
    /// long this process may take to be ready before it gives up and the old one carries on,
    /// in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub takeover_timeout: u64,
    /// Serve Prometheus metrics on this address (`GET /metrics`), without authentication: bind
    /// it to a private or loopback address.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Upper bounds of the latency histograms, in seconds, comma-separated and ascending.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60"
    )]
    pub metrics_buckets: Vec<f64>,
    /// Divides health-check intervals and timeouts (tests only).
    #[arg(long, default_value_t = 1, hide = true)]
    pub health_check_time_scale: u32,
    /// Where access-log files are published, in ELB's S3 key layout (`aws s3 sync` it to the
    /// bucket); defaults to DIR/access-logs. Files are written under DIR/access-log-spool until
    /// they are complete.
    #[arg(long)]
    pub access_log_dir: Option<PathBuf>,
    /// Divides the minute of access logs' EmitInterval (tests only).
    #[arg(long, default_value_t = 1, hide = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub access_log_time_scale: u32,
}

/// The account in ARNs: one node or fleet is one account.
const ACCOUNT: &str = "000000000000";

/// The host clients reach listeners at, as `DNSName` reports it.
fn public_host(args: &ServeArgs) -> String {
    if let Some(name) = &args.dns_name {
        return name.clone();
    }
    if let Some(vip) = args.vip.vip.as_deref().and_then(|v| v.split('/').next()) {
        return vip.to_owned();
    }
    match args.bind.first() {
        Some(ip) if !ip.is_unspecified() => ip.to_string(),
        _ => "localhost".to_owned(),
    }
}

/// The file beside the store where the health of instances is kept between runs.
pub const HEALTH_FILE: &str = "health.json";

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let open_files = raise_open_files_limit();
    let workers = args
        .workers
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    // One worker needs no work stealing: the single-threaded scheduler does the same job with
    // less synchronisation per task wake-up.
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, open_files))
}

/// What the data plane is configured with, from the flags.
fn data_plane_config(args: &ServeArgs, open_files: u64) -> anyhow::Result<DataPlaneConfig> {
    // A proxied connection holds a client and an instance descriptor, a spliced one four more:
    // a third of the descriptors leaves room for the instance side and the rest of the node.
    let max_connections = args.max_connections.unwrap_or_else(|| {
        usize::try_from(open_files / 3)
            .unwrap_or(usize::MAX)
            .max(64)
    });
    let metrics = Registry::new(&args.metrics_buckets).context("--metrics-buckets")?;
    Ok(DataPlaneConfig {
        bind: args.bind.clone(),
        handshake_timeout: Duration::from_secs(args.handshake_timeout),
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        http2_ping_interval: Duration::from_secs(args.http2_ping_interval),
        limits: Limits {
            max_connections,
            max_listener_connections: args.max_listener_connections.unwrap_or(max_connections),
            max_instance_connections: args.max_instance_connections,
            instance_queue: args.instance_queue,
            instance_queue_timeout: Duration::from_secs(args.instance_queue_timeout),
        },
        health_file: Some(args.data_dir.join(HEALTH_FILE)),
        health_check_time_scale: args.health_check_time_scale,
        metrics: Arc::new(metrics),
        ..DataPlaneConfig::default()
    })
}

async fn serve(args: ServeArgs, open_files: u64) -> anyhow::Result<()> {
    // Watch the signals first: a SIGTERM at any point from here on drains instead of killing,
    // and a SIGHUP never kills.
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut usr2 = signal(SignalKind::user_defined2()).context("cannot watch SIGUSR2")?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = int.recv() => tracing::info!("SIGINT: draining"),
        }
    };
    tokio::pin!(stop);

    crate::api_tls::refuse_plain(
        args.api,
        args.api_tls,
        args.api_tls_cert.as_deref(),
        &args.data_dir,
    )?;
    // A node already serving on this data dir hands its sockets over before the store is read,
    // so that no API call lands in it once this process has read the state.
    let mut takeover = tokio::select! {
        takeover = upgrade::take_over(&args.data_dir) => takeover?,
        () = &mut stop => return Ok(()),
    };
    if let Some(t) = &takeover {
        tracing::info!(
            pid = t.pid,
            sockets = t.sockets.len(),
            "taking over from pid {}",
            t.pid
        );
    }

    let node = args.fleet.identity(&args.data_dir, args.api, &args.bind)?;
    let store = Arc::new(open_store(&args).await?);
    let api_tls = crate::api_tls::configure(
        args.api,
        args.api_tls,
        args.api_tls_cert.as_deref(),
        args.api_tls_key.as_deref(),
        &store,
        &args.data_dir,
    )?;
    let (endpoint, ca_option) =
        crate::api_tls::endpoint(args.api, api_tls.is_some(), &args.data_dir);
    if let Some(path) = crate::credentials::ensure_admin_key(&store, &args.data_dir, &args.region)?
    {
        println!(
            "Admin credentials written to {} (profile [{}]). Use them with:\n  \
             export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={}\n  \
             aws --endpoint-url {endpoint}{ca_option} elb describe-load-balancers",
            path.display(),
            crate::credentials::PROFILE,
            path.display(),
            crate::credentials::PROFILE,
        );
    } else if api_tls.is_some() {
        tracing::info!("the API speaks TLS: aws --endpoint-url {endpoint}{ca_option} ...");
    }

    let access_logs = access_logs::AccessLogs::start(
        access_logs::Options {
            dir: args
                .access_log_dir
                .clone()
                .unwrap_or_else(|| args.data_dir.join("access-logs")),
            spool: args.data_dir.join("access-log-spool"),
            account: ACCOUNT,
            region: &args.region,
            bind: &args.bind,
            time_scale: args.access_log_time_scale,
        },
        &store,
    )?;

    // Created after the sockets came: it reads the health the old process saved just before.
    let mut config = data_plane_config(&args, open_files)?;
    config.stickiness_key = StickinessKey::new(&store.stickiness_key()?[..]);
    config.access_log = Some(access_logs.sink.clone());
    let metrics = Arc::clone(&config.metrics);
    let access_log = config.access_log.clone();
    let data_plane = DataPlane::new(config)?;
    let _metrics_endpoint = args.metrics.map(|addr| {
        AbortOnDrop(crate::metrics_endpoint::spawn(
            addr,
            crate::metrics_endpoint::Sources {
                registry: Arc::clone(&metrics),
                data_plane: data_plane.clone(),
                access_log,
            },
        ))
    });
    let series = Arc::new(open_series(&args.data_dir, &metrics)?);
    let sampler = series.start();
    let inherited_api = takeover.as_mut().and_then(|t| t.api.take());
    if let Some(t) = &mut takeover {
        data_plane.inherit(std::mem::take(&mut t.sockets));
    }
    let follower = data_plane.follow(store.watch());

    let service = Arc::new(Control {
        store: Arc::clone(&store),
        data_plane: data_plane.clone(),
        region: args.region.clone(),
        account: ACCOUNT.to_owned(),
        public_host: public_host(&args),
        series,
        access_logs: Arc::clone(&access_logs.tails),
        node,
        pause: Pause::default(),
    });
    let fleet = fleet::start(Arc::clone(&service)).map(AbortOnDrop);
    let api = Arc::new(Api {
        console: Some(Arc::new(fulcrum_console::Console::new(Arc::clone(
            &service,
        )))),
        control: Arc::clone(&service),
    });
    let mut api = ApiServer {
        listener: Arc::new(api_listener(args.api, inherited_api).await?),
        ctx: api,
        limits: ApiLimits {
            header_read_timeout: Duration::from_secs(args.header_read_timeout),
            max_connections: args.api_max_connections,
        },
        tls: api_tls.clone(),
        task: None,
    };
    api.start();

    let control;
    if let Some(t) = takeover {
        let pid = t.pid;
        let limit = Duration::from_secs(args.takeover_timeout);
        let ready = tokio::select! {
            ready = until_ready(&data_plane, &t.waiting_for, limit) => ready.map_err(|waiting| {
                Some(format!("not ready after {limit:?}: {}", waiting.join("; ")))
            }),
            () = &mut stop => Err(None),
        };
        if let Err(why) = ready {
            // The old process takes the API back and carries on; this one lets go of what it
            // accepted meanwhile.
            api.stop().await;
            t.abort(why.as_deref().unwrap_or("asked to stop")).await;
            follower.abort();
            data_plane
                .shutdown(Duration::from_secs(args.drain_timeout))
                .await;
            access_logs.stop().await;
            let Some(why) = why else {
                tracing::info!("did not take over from pid {pid}: it carries on");
                return Ok(());
            };
            bail!("could not take over from pid {pid} ({why}); it carries on");
        }
        // Before the old process stops: a `serve` started from now on finds this one.
        control = listen_control(&args.data_dir);
        // Under systemd (`NotifyAccess=all`), this process is the service from now on; the one
        // it replaces says so too, before it exits.
        crate::notify::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
        match t.ready().await {
            Ok(()) => tracing::info!(pid, "took over from pid {pid}; it drains and exits"),
            Err(e) => {
                tracing::warn!(pid, error = %e, "pid {pid} went away before it was told to stop")
            }
        }
    } else {
        control = listen_control(&args.data_dir);
        crate::notify::notify("READY=1");
    }
    tracing::info!(api = %args.api, bind = ?args.bind, "fulcrum is serving");
    // Once the listeners are open: a node holds the floating address only when it can serve.
    let vip = vip::Vip::start(
        &args.vip,
        &store,
        &service.node.id,
        Arc::clone(&service.node.floating),
    )?;

    // The demo's instances run until this is dropped, at the end.
    let mut _demo = None;
    let mut stopped = args.demo
        && tokio::select! {
            started = crate::demo::start(&store, &data_plane, &args) => {
                _demo = Some(started?);
                false
            }
            () = &mut stop => true,
        };
    // Whether a new process of this node took over (an upgrade), rather than the node stopping.
    let mut replaced = false;
    while !stopped {
        tokio::select! {
            () = &mut stop => {
                crate::notify::notify("STOPPING=1");
                stopped = true;
            }
            _ = hup.recv() => reload(&store, "SIGHUP").await,
            _ = usr2.recv() => start_successor(),
            conn = accept(control.as_ref()) => match conn {
                Ok(conn) => {
                    let handed_over = tokio::select! {
                        done = hand_over(conn, &mut api, &data_plane) => {
                            replaced = done;
                            done
                        }
                        () = &mut stop => true,
                    };
                    if handed_over {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    // The floating address goes first: another node takes it while this one drains.
    if let Some(vip) = vip {
        vip.stop().await;
    }
    // The socket file goes unless a new process has put its own in its place.
    drop(control);
    api.stop().await;
    // A node that stops leaves the fleet's view now rather than when its lease expires. One
    // that a new process replaced stays: this process stops writing its record, and the lease
    // it last wrote it under runs out after the new process has written it again under its own.
    drop(fleet);
    let leaving = Arc::clone(&store);
    let _ = tokio::task::spawn_blocking(move || {
        if replaced {
            leaving.stop_registering();
        } else {
            leaving.leave_fleet();
        }
    })
    .await;
    follower.abort();
    let left = data_plane
        .shutdown(Duration::from_secs(args.drain_timeout))
        .await;
    // After the drain, so that the last requests' counts are in the minute it stores.
    let _ = tokio::task::spawn_blocking(move || sampler.stop()).await;
    // What the drained requests logged is written and every file with lines published.
    access_logs.stop().await;
    if left > 0 {
        tracing::warn!(
            connections = left,
            "drain deadline passed; closing the rest"
        );
    } else {
        tracing::info!("drained; bye");
    }
    Ok(())
}

/// Opens the store off the runtime's threads: etcd may take seconds to answer, or not at all.
async fn open_store(args: &ServeArgs) -> anyhow::Result<Store> {
    let (store, dir) = (args.store.clone(), args.data_dir.clone());
    tokio::task::spawn_blocking(move || store.open(&dir))
        .await
        .context("opening the store")?
}

/// The one-minute series behind CloudWatch's API, in `DIR/metrics.db`. A file that cannot be
/// opened costs the history, not the node: the series is then kept in memory for this run.
fn open_series(
    dir: &std::path::Path,
    registry: &Arc<fulcrum_telemetry::Registry>,
) -> anyhow::Result<fulcrum_telemetry::series::Series> {
    use fulcrum_telemetry::series::{Series, FILE};
    let path = dir.join(FILE);
    Series::open(&path, Arc::clone(registry)).or_else(|e| {
        tracing::warn!(path = %path.display(), error = %e, "metrics kept in memory only");
        Series::in_memory(Arc::clone(registry)).context("cannot keep metrics even in memory")
    })
}

/// Listens on the control socket, through which a process started later takes over.
fn listen_control(dir: &std::path::Path) -> Option<upgrade::ControlSocket> {
    match upgrade::ControlSocket::bind(dir) {
        Ok(control) => Some(control),
        Err(e) => {
            tracing::warn!(
                path = %dir.join(upgrade::SOCKET_FILE).display(),
                error = %e,
                "cannot listen on the control socket: no process can take over from this one"
            );
            None
        }
    }
}

/// Resolves once the data plane serves at least as well as the process it replaces did: what
/// it still waits for, that one was waiting for too. Otherwise, after `limit`, what it is
/// waiting for.
async fn until_ready(
    data_plane: &DataPlane,
    tolerated: &[String],
    limit: Duration,
) -> Result<(), Vec<String>> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let waiting = data_plane.waiting_for();
        if waiting.iter().all(|w| tolerated.contains(w)) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(waiting);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The API's listening socket: the one handed over if it is for the same address, else a new one.
async fn api_listener(
    addr: SocketAddr,
    inherited: Option<std::net::TcpListener>,
) -> anyhow::Result<tokio::net::TcpListener> {
    if let Some(socket) = inherited {
        match socket.local_addr() {
            Ok(local) if local == addr => {
                socket
                    .set_nonblocking(true)
                    .context("the API socket handed over")?;
                return tokio::net::TcpListener::from_std(socket)
                    .context("the API socket handed over");
            }
            Ok(local) => tracing::info!(from = %local, to = %addr, "the API moves"),
            Err(e) => tracing::warn!(error = %e, "the API socket handed over has no address"),
        }
    }
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on the API address {addr}"))
}

/// The API server: accepting on its socket, paused while this node hands over.
struct ApiServer {
    listener: Arc<tokio::net::TcpListener>,
    ctx: Arc<Api>,
    limits: ApiLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ApiServer {
    fn start(&mut self) {
        self.task = Some(tokio::spawn(fulcrum_api::serve_api(
            Arc::clone(&self.listener),
            Arc::clone(&self.ctx),
            self.limits.clone(),
            self.tls.clone(),
        )));
    }

    /// Stops accepting (connections wait in the socket's queue for whoever accepts next).
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Stops accepting, refuses calls on the connections already open (`ServiceUnavailable`,
    /// then close) and waits for those under way to finish.
    async fn pause(&mut self) {
        self.stop().await;
        let ctx = Arc::clone(&self.ctx);
        let _ = tokio::task::spawn_blocking(move || ctx.control.pause.pause()).await;
    }

    /// Takes calls again, on the state as it is on disk now (the process that failed to take
    /// over may have written it).
    async fn resume(&mut self) {
        reload(&self.ctx.control.store, "taking the API back").await;
        self.ctx.control.pause.resume();
        self.start();
    }
}

/// The next connection on the control socket; never, without one.
async fn accept(control: Option<&upgrade::ControlSocket>) -> std::io::Result<UnixStream> {
    match control {
        Some(control) => control.accept().await,
        None => std::future::pending().await,
    }
}

/// Hands this node's sockets to the process on `conn` if it asks. Returns true once that
/// process is ready (this one must now drain and exit), false if this one carries on.
async fn hand_over(conn: UnixStream, api: &mut ApiServer, data_plane: &DataPlane) -> bool {
    let request = match upgrade::HandOver::read(conn).await {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "control socket: a bad request");
            return false;
        }
    };
    let pid = request.pid;
    tracing::info!(pid, "pid {pid} asks to take over: pausing the API");
    api.pause().await;
    let saver = data_plane.clone();
    let _ = tokio::task::spawn_blocking(move || saver.save_health()).await;
    let offered = match data_plane.listening_sockets() {
        Ok(sockets) => {
            let waiting = data_plane.waiting_for();
            let sent = request
                .offer(Some(api.listener.as_fd()), &sockets, &waiting)
                .await;
            sent.map(|()| sockets.len())
        }
        Err(e) => Err(e),
    };
    let answer = match offered {
        Ok(sockets) => {
            tracing::info!(
                pid,
                sockets,
                "sent the API socket and {sockets} listening socket(s) to pid {pid}; serving until it is ready"
            );
            request.answer().await
        }
        Err(e) => {
            request.refuse(&e.to_string()).await;
            Answer::Abort(format!("the sockets could not be sent: {e}"))
        }
    };
    match answer {
        Answer::Ready => {
            tracing::info!(pid, "handed over to a new process (pid {pid}); draining");
            // Under systemd, the new process is the service from now on.
            crate::notify::notify(&format!("MAINPID={pid}"));
            true
        }
        Answer::Abort(why) => {
            tracing::warn!(pid, "pid {pid} did not take over ({why}); serving on");
            api.resume().await;
            false
        }
    }
}

/// SIGUSR2 (`systemctl reload`): starts the program this process was started as (the new
/// binary, once it has been installed in its place) with the same arguments; it takes over
/// from this one as a second `serve` started by hand would. Its output goes where this one's
/// goes.
fn start_successor() {
    let mut argv = std::env::args_os();
    let Some(program) = argv.next() else {
        tracing::error!("SIGUSR2: this process has no argv[0] to start again");
        return;
    };
    let started = tokio::process::Command::new(&program)
        .args(argv)
        .stdin(std::process::Stdio::null())
        .spawn();
    match started {
        Ok(mut child) => {
            let pid = child.id().unwrap_or(0);
            tracing::info!(
                pid,
                program = %program.to_string_lossy(),
                "SIGUSR2: started pid {pid} to take over"
            );
            tokio::spawn(async move {
                if let Ok(status) = child.wait().await {
                    if !status.success() {
                        tracing::warn!(pid, %status, "the process started to take over exited");
                    }
                }
            });
        }
        Err(e) => tracing::error!(
            program = %program.to_string_lossy(),
            error = %e,
            "SIGUSR2: cannot start a new process"
        ),
    }
}

/// SIGHUP (or a hand-over that failed): reads the state from the store again and applies it if
/// it changed (another process wrote the database). Nothing else is reloaded: new flags take a
/// new process (an upgrade).
async fn reload(store: &Arc<Store>, why: &str) {
    let before = store.snapshot().revision;
    let reader = Arc::clone(store);
    match tokio::task::spawn_blocking(move || reader.reload()).await {
        Ok(Ok(true)) => {
            let now = store.snapshot().revision;
            tracing::info!(
                from = before,
                to = now,
                "{why}: re-read the store: revision {now} is applied"
            );
        }
        Ok(Ok(false)) => tracing::info!(
            revision = before,
            "{why}: re-read the store: unchanged at revision {before}"
        ),
        Ok(Err(e)) => tracing::error!(
            error = %e,
            "{why}: cannot re-read the store; serving revision {before} on"
        ),
        Err(e) => tracing::error!(error = %e, "{why}: re-reading the store failed"),
    }
}

/// Every listener, client connection and instance connection is a descriptor, and a TCP stream
/// with splice holds six: the usual soft limit of 1024 would cap a node at a few hundred
/// clients. Raises it to the hard limit; returns the limit in force.
fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            if limit < 65_536 {
                tracing::warn!(
                    limit,
                    "open files are limited to {limit}: raise the hard limit (ulimit -Hn) for busy nodes"
                );
            }
            limit
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open files limit");
            1024
        }
    }
}

/// Stops a task when dropped (at the end of `serve`).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
