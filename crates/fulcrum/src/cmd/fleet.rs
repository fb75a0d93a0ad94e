//! `fulcrum fleet`: the nodes that share one state through etcd (fulcrum's DescribeFleet action).

use clap::{Args, Subcommand};

use super::{block_on, field, items, print, table};
use crate::client::{Client, ClientArgs, ELB};

#[derive(Args, Debug)]
pub struct FleetArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: FleetCommand,
}

#[derive(Subcommand, Debug)]
enum FleetCommand {
    /// The live nodes: their addresses, the revision each has applied (and whether that is the
    /// latest), whether each reaches etcd, and when each was last heard of.
    Status {
        /// Also list how each node's health checks see every instance.
        #[arg(long)]
        health: bool,
    },
}

pub fn run(args: FleetArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    block_on(exec(&client, args.command))
}

async fn exec(c: &Client, command: FleetCommand) -> anyhow::Result<()> {
    match command {
        FleetCommand::Status { health } => {
            let r = c.call(ELB, "DescribeFleet", &[]).await?;
            print(c, &r, |r| {
                let mut out = format!(
                    "Store: {} ({})\nLatest revision: {}\n\n",
                    field(r, "Store"),
                    match field(r, "StoreHealth").as_str() {
                        "ok" => "reachable".to_owned(),
                        _ => format!("UNREACHABLE: {}", field(r, "StoreHealthReason")),
                    },
                    field(r, "LatestRevision")
                );
                let nodes = items(r, "Nodes");
                let rows: Vec<_> = nodes
                    .iter()
                    .map(|n| {
                        let mut id = field(n, "NodeId");
                        if field(n, "Self") == "true" {
                            id.push_str(" *");
                        }
                        vec![
                            id,
                            field(n, "ApiAddress"),
                            items(n, "Addresses")
                                .iter()
                                .filter_map(|a| a.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                            field(n, "AppliedRevision"),
                            if field(n, "Converged") == "true" {
                                "yes".to_owned()
                            } else {
                                "NO".to_owned()
                            },
                            match field(n, "View").as_str() {
                                "ok" => "ok".to_owned(),
                                _ => format!("degraded: {}", field(n, "ViewReason")),
                            },
                            field(n, "LastHeartbeat"),
                        ]
                    })
                    .collect();
                out.push_str(&table(
                    &[
                        "NODE",
                        "API",
                        "ADDRESSES",
                        "REVISION",
                        "CONVERGED",
                        "STORE",
                        "HEARTBEAT",
                    ],
                    &rows,
                    "No nodes.",
                ));
                if health {
                    let rows: Vec<_> = nodes
                        .iter()
                        .flat_map(|n| {
                            items(n, "InstanceHealth").iter().map(|h| {
                                vec![
                                    field(n, "NodeId"),
                                    field(h, "LoadBalancerName"),
                                    field(h, "InstanceId"),
                                    field(h, "State"),
                                    field(h, "Description"),
                                ]
                            })
                        })
                        .collect();
                    out.push('\n');
                    out.push_str(&table(
                        &["NODE", "LOAD BALANCER", "INSTANCE", "STATE", "DESCRIPTION"],
                        &rows,
                        "No instances checked.",
                    ));
                }
                out
            });
        }
    }
    Ok(())
}
