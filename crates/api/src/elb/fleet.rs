//! The fleet as the API shows it: fulcrum's `DescribeFleet` (every live node, what it has
//! applied, how it sees each instance, the addresses for DNS round robin). The records and the
//! fleet's rule for instance health are the service layer's (`fulcrum_control::fleet`).

use fulcrum_control::fleet::nodes;
use fulcrum_store::{InstanceView, NodeView, StoreHealth};

use super::{answer, done};
use crate::error::ApiError;
use crate::time::iso8601;
use crate::xml::Xml;
use crate::Call;

/// `DescribeFleet`: fulcrum's own action (the ELB API has no fleet).
pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    let api = call.ctl;
    let nodes = nodes(api);
    let latest = nodes
        .iter()
        .map(|n| n.applied_revision)
        .chain([api.store.snapshot().revision])
        .max()
        .unwrap_or(0);
    let mut x = answer("DescribeFleet");
    x.text("Store", api.store.describe());
    match api.store.health() {
        StoreHealth::Ok => x.text("StoreHealth", "ok"),
        StoreHealth::Degraded { reason, since } => x
            .text("StoreHealth", "degraded")
            .text("StoreHealthReason", reason)
            .text("StoreDegradedSince", iso8601(since)),
    };
    x.text("LatestRevision", latest);
    x.list("Nodes", &nodes, |x, n| {
        x.text("NodeId", &n.id)
            .text("ApiAddress", &n.api)
            .strings("Addresses", &n.addresses)
            .text("Version", &n.version)
            .text("AppliedRevision", n.applied_revision)
            .text("Converged", n.applied_revision == latest)
            .text("Self", n.id == api.node.id);
        match &n.view {
            NodeView::Ok => x.text("View", "ok"),
            NodeView::Degraded { reason } => x.text("View", "degraded").text("ViewReason", reason),
        };
        x.text("LastHeartbeat", iso8601(n.heartbeat))
            .text("Started", iso8601(n.started))
            .opt_text("FloatingAddress", n.vip.as_ref());
        let views: Vec<(&String, &String, &InstanceView)> = n
            .health
            .iter()
            .flat_map(|(lb, m)| m.iter().map(move |(i, v)| (lb, i, v)))
            .collect();
        x.list("InstanceHealth", &views, |x, (lb, instance, view)| {
            x.text("LoadBalancerName", lb)
                .text("InstanceId", instance)
                .text(
                    "State",
                    if view.in_service {
                        "InService"
                    } else {
                        "OutOfService"
                    },
                )
                .text("ReasonCode", view.reason.as_deref().unwrap_or("N/A"))
                .text("Description", view.description.as_deref().unwrap_or("N/A"));
        });
    });
    let mut dns: Vec<&String> = nodes.iter().flat_map(|n| &n.addresses).collect();
    dns.sort();
    dns.dedup();
    x.strings("DnsAddresses", dns);
    Ok(done(x, "DescribeFleet"))
}
