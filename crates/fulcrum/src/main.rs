//! The `fulcrum` binary: command-line parsing and wiring. Each subcommand lives in its own module.

#![forbid(unsafe_code)]

mod api_tls;
mod client;
mod cmd;
mod credentials;
mod demo;
mod metrics_endpoint;
mod notify;
mod serve;
mod upgrade;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc's per-thread free lists cost less than glibc malloc on the proxy's many small,
/// short-lived allocations (header maps, buffers, futures) and fragment less after bursts of
/// short connections.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// fulcrum: a self-hosted Elastic Load Balancer.
#[derive(Parser)]
#[command(name = "fulcrum", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to stderr: `text` for people, `json` (one object per line,
    /// with every field) for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "FULCRUM_LOG_FORMAT")]
    log_format: LogFormat,
    /// What is logged: a level (`error`, `warn`, `info`, `debug`, `trace`) or a filter such as
    /// `info,fulcrum_proxy=debug`. Defaults to RUST_LOG, else `info`.
    #[arg(long, global = true, env = "FULCRUM_LOG_LEVEL")]
    log_level: Option<String>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the load balancer: listeners, health checks and the control API.
    Serve(Box<serve::ServeArgs>),
    /// Server certificates for HTTPS and SSL listeners: upload, list, show, delete.
    Cert(cmd::cert::CertArgs),
    /// Load balancers: create, describe, delete, health check, instances and their health.
    Lb(cmd::lb::LbArgs),
    /// The instance inventory: which address each instance id stands for.
    Instance(cmd::instance::InstanceArgs),
    /// Access keys that sign API calls: create, list, delete.
    Key(cmd::key::KeyArgs),
    /// The nodes of a fleet sharing one state through etcd: status.
    Fleet(cmd::fleet::FleetArgs),
}

fn init_logging(format: LogFormat, level: Option<&str>) -> anyhow::Result<()> {
    use anyhow::Context;
    use tracing_subscriber::EnvFilter;
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let filter = match level {
        Some(level) => {
            // A bare word would be taken as a target name and silently log nothing.
            let bad = level.split(',').find(|d| {
                !d.contains('=') && !LEVELS.contains(&d.trim().to_ascii_lowercase().as_str())
            });
            if let Some(bad) = bad {
                anyhow::bail!(
                    "--log-level {bad:?} is not a level ({}) or a TARGET=LEVEL filter",
                    LEVELS.join(", ")
                );
            }
            EnvFilter::try_new(level)
                .with_context(|| format!("--log-level {level:?} is not a level or a filter"))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(cli.log_format, cli.log_level.as_deref()) {
        eprintln!("fulcrum: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Cert(args) => cmd::cert::run(args),
        Command::Lb(args) => cmd::lb::run(args),
        Command::Instance(args) => cmd::instance::run(args),
        Command::Key(args) => cmd::key::run(args),
        Command::Fleet(args) => cmd::fleet::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fulcrum: {e:#}");
            ExitCode::FAILURE
        }
    }
}
