//! `fulcrum key`: the access keys that sign API calls. `create` prints the new secret, once:
//! that is its purpose. Nothing else ever prints a secret.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{block_on, field, items, list_all, print, table};
use crate::client::{Client, ClientArgs, Params, IAM};

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Create an access key and print its secret (shown this once only).
    Create,
    /// List the active access keys (ids only).
    List,
    /// Revoke an access key: calls signed with it fail from now on.
    Delete {
        /// The access key id.
        #[arg(long)]
        id: String,
    },
}

pub fn run(args: KeyArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    block_on(exec(&client, args.command))
}

async fn exec(c: &Client, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create => {
            let r = c.call(IAM, "CreateAccessKey", &[]).await?;
            print(c, &r, |r| {
                let k = &r["AccessKey"];
                format!(
                    "AccessKeyId      {}\nSecretAccessKey  {}\n\nThe secret is shown only now: \
                     store it (as aws_secret_access_key in a credentials file, or in \
                     AWS_SECRET_ACCESS_KEY).",
                    field(k, "AccessKeyId"),
                    field(k, "SecretAccessKey")
                )
            });
        }
        KeyCommand::List => {
            let all = list_all(c, "ListAccessKeys", "AccessKeyMetadata").await?;
            let r = json!({ "AccessKeyMetadata": all });
            print(c, &r, |r| {
                let rows: Vec<_> = items(r, "AccessKeyMetadata")
                    .iter()
                    .map(|k| {
                        ["AccessKeyId", "Status", "CreateDate"]
                            .map(|f| field(k, f))
                            .to_vec()
                    })
                    .collect();
                table(
                    &["ACCESS KEY ID", "STATUS", "CREATED"],
                    &rows,
                    "No access keys.",
                )
            });
        }
        KeyCommand::Delete { id } => {
            let mut p = Params::default();
            p.set("AccessKeyId", &id);
            let r = c.call(IAM, "DeleteAccessKey", &p.0).await?;
            print(c, &r, |_| format!("Deleted access key {id}."));
        }
    }
    Ok(())
}
