//! This node's place in a fleet: its id (kept in the data dir), and a task that keeps its record
//! in the store (what it has applied, how it sees every instance) up to date.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use fulcrum_control::{Control, NodeIdentity};

/// The file in the data dir that keeps the node's id across restarts.
pub const NODE_ID_FILE: &str = "node-id";

/// How often the record is compared with what the node does now. A change (a new revision
/// applied, an instance in or out of service) reaches the other nodes within this much more
/// than etcd's own latency.
const REFRESH: Duration = Duration::from_millis(100);

#[derive(Args, Debug, Clone)]
pub struct FleetArgs {
    /// This node's id in the fleet; defaults to the one kept in DIR/node-id (drawn on the first
    /// start).
    #[arg(long)]
    pub node_id: Option<String>,
    /// An address clients reach this node's listeners at, for the fleet's DNS round robin
    /// (`DescribeFleet`); repeatable. Defaults to --bind when it is a specific address.
    #[arg(long = "advertise", value_name = "ADDR")]
    pub advertise: Vec<IpAddr>,
}

impl FleetArgs {
    pub fn identity(
        &self,
        data_dir: &Path,
        api: SocketAddr,
        bind: &[IpAddr],
    ) -> anyhow::Result<NodeIdentity> {
        let id = match &self.node_id {
            Some(id) => id.clone(),
            None => stored_id(data_dir)?,
        };
        let addresses = if self.advertise.is_empty() {
            bind.iter()
                .filter(|ip| !ip.is_unspecified())
                .map(IpAddr::to_string)
                .collect()
        } else {
            self.advertise.iter().map(IpAddr::to_string).collect()
        };
        Ok(NodeIdentity {
            id,
            api: api.to_string(),
            addresses,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            floating: Arc::default(),
        })
    }
}

/// The id in DIR/node-id, drawn on first use: a restart or an upgrade is the same node.
fn stored_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut bytes = [0u8; 6];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("cannot draw a node id"))?;
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_else(|| "node".to_owned());
    let id = format!("{host}-{}", hex::encode(bytes));
    // Before the store has opened: on a first start the data dir may not exist yet (the store
    // creates it the same way).
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    std::fs::write(&path, format!("{id}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

/// Keeps this node's record in the store while the node runs (nothing on SQLite).
pub fn start(control: Arc<Control>) -> Option<tokio::task::JoinHandle<()>> {
    if !control.store.is_shared() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut last = None;
        loop {
            let mut record = fulcrum_control::fleet::node_record(&control);
            // The heartbeat is the store's to write; a change is anything else.
            record.heartbeat = 0;
            if last.as_ref() != Some(&record) {
                control.store.register_node(record.clone());
                last = Some(record);
            }
            tokio::time::sleep(REFRESH).await;
        }
    }))
}
