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
}

#[derive(Subcommand)]
enum Command {
    /// Run the load balancer: listeners, health checks and the control API.
    Serve(serve::ServeArgs),
    /// Server certificates for HTTPS and SSL listeners: upload, list, show, delete.
    Cert(cmd::cert::CertArgs),
    /// Load balancers: create, describe, delete, health check, instances and their health.
    Lb(cmd::lb::LbArgs),
    /// The instance inventory: which address each instance id stands for.
    Instance(cmd::instance::InstanceArgs),
    /// Access keys that sign API calls: create, list, delete.
    Key(cmd::key::KeyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Cert(args) => cmd::cert::run(args),
        Command::Lb(args) => cmd::lb::run(args),
        Command::Instance(args) => cmd::instance::run(args),
        Command::Key(args) => cmd::key::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fulcrum: {e:#}");
            ExitCode::FAILURE
        }
    }
}
