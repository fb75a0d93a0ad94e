//! `fulcrum serve`: opens the store, runs the data plane on every state it publishes, serves the
//! API, and drains on SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use fulcrum_api::{Api, ApiLimits};
use fulcrum_proxy::{DataPlane, DataPlaneConfig, Limits};
use fulcrum_store::Store;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where the state (SQLite) and the master key live.
    #[arg(long, default_value = "./fulcrum-data", env = "FULCRUM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address of the control API, the console and /healthz.
    #[arg(long, default_value = "127.0.0.1:9900")]
    pub api: SocketAddr,
    /// Address that load balancer listeners bind to, at each listener's port; repeatable (an
    /// IPv4 and an IPv6 address, say). `::` alone is dual-stack.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: Vec<IpAddr>,
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
    /// Divides health-check intervals and timeouts (tests only).
    #[arg(long, default_value_t = 1, hide = true)]
    pub health_check_time_scale: u32,
}

/// The account in ARNs: one node or fleet is one account.
const ACCOUNT: &str = "000000000000";

/// The host clients reach listeners at, as `DNSName` reports it.
fn public_host(bind: &[IpAddr]) -> String {
    match bind.first() {
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
fn data_plane_config(args: &ServeArgs, open_files: u64) -> DataPlaneConfig {
    // A proxied connection holds a client and an instance descriptor, a spliced one four more:
    // a third of the descriptors leaves room for the instance side and the rest of the node.
    let max_connections = args.max_connections.unwrap_or_else(|| {
        usize::try_from(open_files / 3)
            .unwrap_or(usize::MAX)
            .max(64)
    });
    DataPlaneConfig {
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
        ..DataPlaneConfig::default()
    }
}

async fn serve(args: ServeArgs, open_files: u64) -> anyhow::Result<()> {
    // Watch the signals first: a SIGTERM at any point from here on drains instead of killing.
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = int.recv() => tracing::info!("SIGINT: draining"),
        }
    };
    tokio::pin!(stop);

    let store = Arc::new(
        Store::open(&args.data_dir)
            .with_context(|| format!("cannot open the store in {}", args.data_dir.display()))?,
    );
    if let Some(path) = crate::credentials::ensure_admin_key(&store, &args.data_dir, &args.region)?
    {
        println!(
            "Admin credentials written to {} (profile [{}]). Use them with:\n  \
             export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={}\n  \
             aws --endpoint-url http://{} elb describe-load-balancers",
            path.display(),
            crate::credentials::PROFILE,
            path.display(),
            crate::credentials::PROFILE,
            args.api
        );
    }

    let data_plane = DataPlane::new(data_plane_config(&args, open_files))?;
    let follower = data_plane.follow(store.watch());

    let api_listener = Arc::new(
        tokio::net::TcpListener::bind(args.api)
            .await
            .with_context(|| format!("cannot listen on the API address {}", args.api))?,
    );
    let api = Arc::new(Api {
        store: Arc::clone(&store),
        data_plane: data_plane.clone(),
        region: args.region.clone(),
        account: ACCOUNT.to_owned(),
        public_host: public_host(&args.bind),
    });
    let api_limits = ApiLimits {
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        max_connections: args.api_max_connections,
    };
    let api = tokio::spawn(fulcrum_api::serve_api(api_listener, api, api_limits));
    tracing::info!(api = %args.api, bind = ?args.bind, "fulcrum is serving");

    // The demo's instances run until this is dropped, at the end.
    let mut _demo = None;
    let stopped_while_starting = args.demo
        && tokio::select! {
            started = crate::demo::start(&store, &data_plane, &args) => {
                _demo = Some(started?);
                false
            }
            () = &mut stop => true,
        };
    if !stopped_while_starting {
        stop.await;
    }
    api.abort();
    follower.abort();
    let left = data_plane
        .shutdown(Duration::from_secs(args.drain_timeout))
        .await;
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
