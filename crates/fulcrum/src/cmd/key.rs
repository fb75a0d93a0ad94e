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
    Create {
        /// `admin` (every action) or `read-only` (Describe*, List* and Get* only).
        #[arg(long, default_value = "admin", value_parser = ["admin", "read-only"])]
        scope: String,
        /// Offline, on the node itself: create the key straight in the store of this data dir
        /// (it needs the master key: `DIR/master.key` or `FULCRUM_MASTER_KEY`). The way back in
        /// for an operator who has no admin key left.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// With --data-dir: the store of a fleet (`etcd://...`, and the --etcd-* options), as
        /// `serve` is given it.
        #[command(flatten)]
        store: crate::serve::StoreArgs,
    },
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
    if let KeyCommand::Create {
        scope,
        data_dir: Some(dir),
        store,
    } = &args.command
    {
        return create_offline(dir, store, scope);
    }
    let client = Client::new(&args.client)?;
    block_on(exec(&client, args.command))
}

/// Creates a key in the store directly, without the API (which needs a key to be called).
fn create_offline(
    dir: &std::path::Path,
    store: &crate::serve::StoreArgs,
    scope: &str,
) -> anyhow::Result<()> {
    let scope = fulcrum_store::KeyScope::parse(scope)
        .ok_or_else(|| anyhow::anyhow!("unknown scope {scope}: admin or read-only"))?;
    let store = store.open(dir)?;
    let (id, secret) = store.create_access_key(
        &format!("{} (fulcrum key create --data-dir)", scope.as_str()),
        scope,
    )?;
    println!(
        "AccessKeyId      {id}\nSecretAccessKey  {secret}\nScope            {}\n\nThe secret is \
         shown only now: store it (as aws_secret_access_key in a credentials file, or in \
         AWS_SECRET_ACCESS_KEY).",
        scope.as_str()
    );
    Ok(())
}

async fn exec(c: &Client, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create { scope, .. } => {
            let mut p = Params::default();
            p.set("UserName", &scope);
            let r = c.call(IAM, "CreateAccessKey", &p.0).await?;
            print(c, &r, |r| {
                let k = &r["AccessKey"];
                format!(
                    "AccessKeyId      {}\nSecretAccessKey  {}\nScope            {}\n\nThe secret is shown only now: \
                     store it (as aws_secret_access_key in a credentials file, or in \
                     AWS_SECRET_ACCESS_KEY).",
                    field(k, "AccessKeyId"),
                    field(k, "SecretAccessKey"),
                    field(k, "UserName")
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
                        ["AccessKeyId", "UserName", "Status", "CreateDate"]
                            .map(|f| field(k, f))
                            .to_vec()
                    })
                    .collect();
                table(
                    &["ACCESS KEY ID", "SCOPE", "STATUS", "CREATED"],
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
