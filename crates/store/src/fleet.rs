//! What a node of a fleet says about itself in etcd, under a lease of its own: who it is, where
//! it answers, which revision its data plane has applied, whether it can reach etcd, and how it
//! sees every instance. The record vanishes when the node's lease expires (the node died or was
//! cut off) or is revoked (the node left cleanly).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One node's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Stable across restarts of the node (kept in its data dir).
    pub id: String,
    /// Where the node's API answers (`host:port`).
    pub api: String,
    /// Addresses clients may use to reach the node's listeners (for DNS round robin).
    pub addresses: Vec<String>,
    /// fulcrum's version.
    pub version: String,
    /// The revision of the state its data plane has applied.
    pub applied_revision: u64,
    /// Whether it reaches the store.
    pub view: NodeView,
    /// When the node last wrote this record, seconds since the Unix epoch.
    pub heartbeat: u64,
    /// When the node started, seconds since the Unix epoch.
    pub started: u64,
    /// The floating address this node holds, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<String>,
    /// Load balancer name -> instance id -> how this node's health checks see it.
    #[serde(default)]
    pub health: BTreeMap<String, BTreeMap<String, InstanceView>>,
}

/// Whether a node reaches the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum NodeView {
    Ok,
    Degraded { reason: String },
}

/// One node's verdict on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub in_service: bool,
    /// ELB's reason code when out of service (`Instance`, `ELB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
