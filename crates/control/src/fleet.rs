//! The fleet as the control plane sees it: this node's record (what it has applied, how its
//! checks see every instance), the other nodes' records, and the rule by which instance health
//! is answered for the fleet rather than for one node.

use std::collections::BTreeMap;

use fulcrum_model::{InstanceId, LbName};
use fulcrum_proxy::{HealthState, HealthStatus};
use fulcrum_store::{InstanceView, NodeRecord, NodeView, StoreHealth};

use crate::Control;

/// Who this node is in a fleet.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// Stable across restarts (kept in the data dir).
    pub id: String,
    /// Where its API answers.
    pub api: String,
    /// Where clients reach its listeners.
    pub addresses: Vec<String>,
    pub version: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    /// The floating address this node holds now, if any (`ADDR/PREFIX`).
    pub floating: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// This node's record as it is now: what it has applied and how its checks see every instance.
/// `heartbeat` and `view` are filled in by the store when it writes the record.
pub fn node_record(api: &Control) -> NodeRecord {
    let mut health: BTreeMap<String, BTreeMap<String, InstanceView>> = BTreeMap::new();
    for ((lb, instance), status) in api.data_plane.health_view() {
        health
            .entry(lb.as_str().to_owned())
            .or_default()
            .insert(instance.to_string(), view_of(&status));
    }
    NodeRecord {
        id: api.node.id.clone(),
        api: api.node.api.clone(),
        addresses: api.node.addresses.clone(),
        version: api.node.version.clone(),
        applied_revision: api.data_plane.applied_revision(),
        view: match api.store.health() {
            StoreHealth::Ok => NodeView::Ok,
            StoreHealth::Degraded { reason, .. } => NodeView::Degraded { reason },
        },
        heartbeat: crate::now(),
        started: api.node.started,
        vip: api
            .node
            .floating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        health,
    }
}

fn view_of(status: &HealthStatus) -> InstanceView {
    let in_service = status.state == HealthState::InService;
    InstanceView {
        in_service,
        reason: (!in_service).then(|| status.reason_code.to_owned()),
        description: (!in_service).then(|| status.description.clone()),
    }
}

/// The other live nodes' records (none on SQLite), read once for all the instances of a call.
pub fn other_nodes(api: &Control) -> Vec<NodeRecord> {
    let mut nodes = api.store.fleet();
    nodes.retain(|n| n.id != api.node.id);
    nodes
}

/// The live nodes, sorted by id: this one as it is now, the others as their records say.
pub fn nodes(api: &Control) -> Vec<NodeRecord> {
    let mut nodes = other_nodes(api);
    nodes.push(node_record(api));
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    nodes
}

/// The fleet's verdict on an instance this node checks and sees as `own`, given the other
/// nodes' records (`other_nodes`).
///
/// The rule: an instance is InService when more than half of the live nodes that check it see
/// it InService; on a tie, this node's own checks decide. A node that cannot reach the instance
/// (a partition between one balancer and the instances) thus does not take it out of service
/// for the others, and one that alone still reaches it does not keep it in.
pub fn fleet_health(
    others: &[NodeRecord],
    lb: &LbName,
    instance: &InstanceId,
    own: HealthStatus,
) -> HealthStatus {
    if others.is_empty() || own.state == HealthState::Unknown {
        return own;
    }
    let own_in = own.state == HealthState::InService;
    let id = instance.to_string();
    let others: Vec<bool> = others
        .iter()
        .filter_map(|node| {
            node.health
                .get(lb.as_str())
                .and_then(|m| m.get(&id))
                .map(|view| view.in_service)
        })
        .collect();
    let (fleet_in, voters, in_service) = verdict(own_in, &others);
    match (fleet_in, own_in) {
        (true, true) | (false, false) => own,
        (true, false) => HealthStatus {
            state: HealthState::InService,
            reason_code: "N/A",
            description: "N/A".into(),
        },
        (false, true) => HealthStatus {
            state: HealthState::OutOfService,
            reason_code: "Instance",
            description: format!(
                "Instance has failed at least the UnhealthyThreshold number of health checks \
                 consecutively, as seen from {} of {voters} balancer nodes.",
                voters - in_service
            ),
        },
    }
}

/// The fleet's vote on one instance: this node's view and the others' (only nodes that check
/// it vote). Returns whether it is in service for the fleet, how many voted, and how many of
/// them see it in service.
fn verdict(own_in: bool, others: &[bool]) -> (bool, usize, usize) {
    let voters = 1 + others.len();
    let in_service = usize::from(own_in) + others.iter().filter(|v| **v).count();
    let fleet_in = match (in_service * 2).cmp(&voters) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => own_in,
    };
    (fleet_in, voters, in_service)
}

#[cfg(test)]
mod tests {
    use super::verdict;

    #[test]
    fn the_majority_of_the_nodes_that_check_decides_and_a_tie_is_the_answering_nodes() {
        // Alone, or with nodes that do not check it: its own view.
        assert!(verdict(true, &[]).0);
        assert!(!verdict(false, &[]).0);
        // One node that cannot reach the instance does not take it out for the others...
        assert_eq!(verdict(false, &[true, true]), (true, 3, 2));
        // ...and one that alone still reaches it does not keep it in.
        assert_eq!(verdict(true, &[false, false]), (false, 3, 1));
        // A tie: the answering node's own checks.
        assert!(verdict(true, &[false]).0);
        assert!(!verdict(false, &[true]).0);
        assert!(verdict(true, &[true, false, false]).0);
    }
}
