//! `fulcrum instance`: the inventory that names instance addresses, so that load balancers can
//! register instances by id as on EC2 (fulcrum's own PutInventoryInstance, DescribeInventory and
//! DeleteInventoryInstance actions).

use clap::{Args, Subcommand};

use super::{block_on, field, items, print, table};
use crate::client::{Client, ClientArgs, Params, ELB};

#[derive(Args, Debug)]
pub struct InstanceArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: InstanceCommand,
}

#[derive(Subcommand, Debug)]
enum InstanceCommand {
    /// Add an instance, or move it to a new address (its load balancers follow).
    Put {
        /// The instance id load balancers register, like i-web1.
        #[arg(long)]
        id: String,
        /// The IPv4 or IPv6 address traffic for it goes to.
        #[arg(long)]
        address: String,
    },
    /// List the instances and their addresses.
    List,
    /// Delete an instance; refused while a load balancer has it registered.
    Delete {
        #[arg(long)]
        id: String,
    },
}

pub fn run(args: InstanceArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    block_on(exec(&client, args.command))
}

async fn exec(c: &Client, command: InstanceCommand) -> anyhow::Result<()> {
    match command {
        InstanceCommand::Put { id, address } => {
            let mut p = Params::default();
            p.set("InstanceId", &id).set("Address", &address);
            let r = c.call(ELB, "PutInventoryInstance", &p.0).await?;
            print(c, &r, |_| format!("Instance {id} is at {address}."));
        }
        InstanceCommand::List => {
            let r = c.call(ELB, "DescribeInventory", &[]).await?;
            print(c, &r, |r| {
                let rows: Vec<_> = items(r, "Instances")
                    .iter()
                    .map(|i| vec![field(i, "InstanceId"), field(i, "Address")])
                    .collect();
                table(&["INSTANCE", "ADDRESS"], &rows, "No instances.")
            });
        }
        InstanceCommand::Delete { id } => {
            let mut p = Params::default();
            p.set("InstanceId", &id);
            let r = c.call(ELB, "DeleteInventoryInstance", &p.0).await?;
            print(c, &r, |_| format!("Deleted instance {id}."));
        }
    }
    Ok(())
}
