//! `fulcrum cert`: IAM server certificates. The private key goes up once, with `upload`, and is
//! never shown again by the API or printed by these commands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{block_on, field, items, list_all, print, table};
use crate::client::{Client, ClientArgs, Params, IAM};

#[derive(Args, Debug)]
pub struct CertArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: CertCommand,
}

#[derive(Subcommand, Debug)]
enum CertCommand {
    /// Upload a certificate and its private key, for HTTPS and SSL listeners to use.
    Upload {
        /// The certificate's name, which listeners refer to.
        #[arg(long)]
        name: String,
        /// PEM file with the certificate.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// PEM file with the certificate's private key (RSA or ECDSA).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// PEM file with the intermediate certificates, issuer of the certificate first.
        #[arg(long, value_name = "FILE")]
        chain: Option<PathBuf>,
        /// A path to group certificates by, like /web/ (default /).
        #[arg(long)]
        path: Option<String>,
    },
    /// List the certificates (never their keys).
    List,
    /// Show one certificate: its metadata, body and chain (never its key).
    Show {
        #[arg(long)]
        name: String,
    },
    /// Delete a certificate; refused while a listener uses it.
    Delete {
        #[arg(long)]
        name: String,
    },
}

pub fn run(args: CertArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    block_on(exec(&client, args.command))
}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))
}

async fn exec(c: &Client, command: CertCommand) -> anyhow::Result<()> {
    match command {
        CertCommand::Upload {
            name,
            cert,
            key,
            chain,
            path,
        } => {
            let mut p = Params::default();
            p.set("ServerCertificateName", &name)
                .set("CertificateBody", read(&cert, "certificate")?)
                .set("PrivateKey", read(&key, "private key")?)
                .opt("Path", path);
            if let Some(chain) = chain {
                p.set("CertificateChain", read(&chain, "chain")?);
            }
            let r = c.call(IAM, "UploadServerCertificate", &p.0).await?;
            print(c, &r, |r| {
                let m = &r["ServerCertificateMetadata"];
                format!(
                    "Uploaded certificate {}: {} (expires {})",
                    field(m, "ServerCertificateName"),
                    field(m, "Arn"),
                    field(m, "Expiration")
                )
            });
        }
        CertCommand::List => {
            let all =
                list_all(c, "ListServerCertificates", "ServerCertificateMetadataList").await?;
            let r = json!({ "ServerCertificateMetadataList": all });
            print(c, &r, |r| {
                let rows: Vec<_> = items(r, "ServerCertificateMetadataList")
                    .iter()
                    .map(|m| {
                        ["ServerCertificateName", "Path", "Expiration", "Arn"]
                            .map(|k| field(m, k))
                            .to_vec()
                    })
                    .collect();
                table(
                    &["NAME", "PATH", "EXPIRES", "ARN"],
                    &rows,
                    "No certificates.",
                )
            });
        }
        CertCommand::Show { name } => {
            let mut p = Params::default();
            p.set("ServerCertificateName", &name);
            let r = c.call(IAM, "GetServerCertificate", &p.0).await?;
            print(c, &r, show_text);
        }
        CertCommand::Delete { name } => {
            let mut p = Params::default();
            p.set("ServerCertificateName", &name);
            let r = c.call(IAM, "DeleteServerCertificate", &p.0).await?;
            print(c, &r, |_| format!("Deleted certificate {name}."));
        }
    }
    Ok(())
}

fn show_text(r: &Value) -> String {
    let cert = &r["ServerCertificate"];
    let m = &cert["ServerCertificateMetadata"];
    let mut out = String::new();
    for (label, key) in [
        ("Name", "ServerCertificateName"),
        ("Id", "ServerCertificateId"),
        ("Path", "Path"),
        ("ARN", "Arn"),
        ("Uploaded", "UploadDate"),
        ("Expires", "Expiration"),
    ] {
        out.push_str(&format!("{label:<10}{}\n", field(m, key)));
    }
    for tag in items(cert, "Tags") {
        out.push_str(&format!(
            "{:<10}{}={}\n",
            "Tag",
            field(tag, "Key"),
            field(tag, "Value")
        ));
    }
    out.push('\n');
    out.push_str(field(cert, "CertificateBody").trim_end());
    out.push('\n');
    let chain = field(cert, "CertificateChain");
    if !chain.is_empty() {
        out.push_str(chain.trim_end());
        out.push('\n');
    }
    out
}
