//! Where the state lives, as `serve` (and `key create --data-dir`) are told: SQLite in the data
//! dir, or a fleet's etcd.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use fulcrum_store::{EtcdConfig, Store, DEFAULT_PREFIX};

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Where the state lives: omitted, SQLite in --data-dir (one node);
    /// `etcd://HOST:PORT[,HOST:PORT...]` for a fleet sharing one state (every node is given the
    /// same master key: DIR/master.key or FULCRUM_MASTER_KEY).
    #[arg(long, env = "FULCRUM_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// The prefix of every key in etcd; two fleets on one etcd use two prefixes.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub etcd_prefix: String,
    /// The CA of etcd's certificates (PEM): speaks TLS to etcd.
    #[arg(long, value_name = "PEM")]
    pub etcd_ca: Option<PathBuf>,
    /// A client certificate for etcd (PEM), with --etcd-key, for etcd's --client-cert-auth.
    #[arg(long, value_name = "PEM", requires = "etcd_key")]
    pub etcd_cert: Option<PathBuf>,
    /// The key of --etcd-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// etcd's user, with --etcd-password (its tokens are renewed when they expire).
    #[arg(long, env = "FULCRUM_ETCD_USER", requires = "etcd_password")]
    pub etcd_user: Option<String>,
    /// The password of --etcd-user; better given in FULCRUM_ETCD_PASSWORD than on the command
    /// line, where other users can see it.
    #[arg(long, env = "FULCRUM_ETCD_PASSWORD", hide_env_values = true)]
    pub etcd_password: Option<String>,
}

impl StoreArgs {
    /// Opens the store the flags name.
    pub fn open(&self, data_dir: &Path) -> anyhow::Result<Store> {
        let Some(url) = &self.store else {
            return Store::open(data_dir)
                .with_context(|| format!("cannot open the store in {}", data_dir.display()));
        };
        let mut config = EtcdConfig::from_url(url).map_err(|e| anyhow::anyhow!("--store: {e}"))?;
        config.prefix = self.etcd_prefix.clone();
        config.ca = self.etcd_ca.clone();
        config.cert = self.etcd_cert.clone();
        config.key = self.etcd_key.clone();
        config.user = self.etcd_user.clone();
        config.password = self.etcd_password.clone().map(zeroize::Zeroizing::new);
        Store::open_etcd(data_dir, config)
            .with_context(|| format!("cannot open the store at {url}"))
    }
}
