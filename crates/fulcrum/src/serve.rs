//! `fulcrum serve`: opens the store, runs the data plane on every state it publishes, serves the
//! API, and drains on SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use fulcrum_api::Api;
use fulcrum_proxy::{DataPlane, DataPlaneConfig};
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
    /// Address that load balancer listeners bind to, at each listener's port.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
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
    /// A client that has not sent a complete request head by then is disconnected, in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_read_timeout: u64,
    /// Divides health-check intervals and timeouts (tests only).
    #[arg(long, default_value_t = 1, hide = true)]
    pub health_check_time_scale: u32,
}

/// The account in ARNs: one node or fleet is one account.
const ACCOUNT: &str = "000000000000";

/// The host clients reach listeners at, as `DNSName` reports it.
fn public_host(bind: IpAddr) -> String {
    if bind.is_unspecified() {
        "localhost".to_owned()
    } else {
        bind.to_string()
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    raise_open_files_limit();
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
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
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

    let data_plane = DataPlane::new(DataPlaneConfig {
        bind: args.bind,
        handshake_timeout: Duration::from_secs(args.handshake_timeout),
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        health_check_time_scale: args.health_check_time_scale,
        ..DataPlaneConfig::default()
    })?;
    let follower = data_plane.follow(store.watch());

    let api_listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("cannot listen on the API address {}", args.api))?;
    let api = Arc::new(Api {
        store: Arc::clone(&store),
        data_plane: data_plane.clone(),
        region: args.region.clone(),
        account: ACCOUNT.to_owned(),
        public_host: public_host(args.bind),
    });
    let api = tokio::spawn(fulcrum_api::serve_api(api_listener, api));
    tracing::info!(api = %args.api, bind = %args.bind, "fulcrum is serving");

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
/// clients. Raise it to the hard limit.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < 65_536 => tracing::warn!(
            limit,
            "open files are limited to {limit}: raise the hard limit (ulimit -Hn) for busy nodes"
        ),
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
}
