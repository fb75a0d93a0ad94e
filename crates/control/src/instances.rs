//! Instances: registration with a load balancer, their health as the fleet sees it, and the
//! inventory (fulcrum's own: an instance id names an address, as on EC2).

use std::net::IpAddr;

use fulcrum_model::{InstanceId, LbName, State};
use fulcrum_proxy::{HealthState, HealthStatus};

use crate::error::At;
use crate::load_balancers::lb_name;
use crate::{Control, ControlError};

/// One instance's health, as ELB's `DescribeInstanceHealth` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHealth {
    pub instance: InstanceId,
    /// `InService`, `OutOfService` or `Unknown`.
    pub state: &'static str,
    /// `ELB`, `Instance` or `N/A`.
    pub reason_code: &'static str,
    pub description: String,
}

impl InstanceHealth {
    pub fn in_service(&self) -> bool {
        self.state == HealthState::InService.as_str()
    }
}

fn instance_ids(ids: &[String], required: bool) -> Result<Vec<InstanceId>, ControlError> {
    if required && ids.is_empty() {
        return Err(
            ControlError::validation("Instances must name at least one instance").at("Instances"),
        );
    }
    ids.iter()
        .map(|i| InstanceId::parse(i))
        .collect::<Result<_, _>>()
        .at("Instances")
}

/// An instance error is the `Instances` field's when it is about the instances named.
fn instances_field(e: ControlError) -> ControlError {
    match e.code {
        "InvalidInstance" | "ValidationError" => e.at("Instances"),
        _ => e,
    }
}

impl Control {
    /// ELB `RegisterInstancesWithLoadBalancer`; returns the instances registered now.
    pub fn register_instances(
        &self,
        name: &str,
        ids: &[String],
    ) -> Result<Vec<InstanceId>, ControlError> {
        self.change_registration(name, ids, State::register_instances)
    }

    /// ELB `DeregisterInstancesFromLoadBalancer`; returns the instances registered now.
    pub fn deregister_instances(
        &self,
        name: &str,
        ids: &[String],
    ) -> Result<Vec<InstanceId>, ControlError> {
        self.change_registration(name, ids, State::deregister_instances)
    }

    fn change_registration(
        &self,
        name: &str,
        ids: &[String],
        change: fn(&mut State, &str, &[InstanceId]) -> Result<(), fulcrum_model::ModelError>,
    ) -> Result<Vec<InstanceId>, ControlError> {
        let name = lb_name(name)?;
        let ids = instance_ids(ids, true)?;
        self.update(|s| {
            change(s, name.as_str(), &ids)?;
            Ok(s.load_balancer(name.as_str())?.instances.clone())
        })
        .map_err(instances_field)
    }

    /// ELB `DescribeInstanceHealth`: the instances asked for, or every registered one.
    ///
    /// As ELB: a named instance's state is returned even when it is not registered (it is out
    /// of service); only one that does not exist (no address, not in the inventory) is
    /// invalid. With a fleet, the answer is the fleet's ([`crate::fleet::fleet_health`]).
    pub fn instance_health(
        &self,
        state: &State,
        name: &str,
        asked: &[String],
    ) -> Result<Vec<InstanceHealth>, ControlError> {
        let others = crate::fleet::other_nodes(self);
        self.health_with(state, &others, name, asked)
    }

    /// Every load balancer's registered instances and their health (the other nodes' records
    /// read once for all).
    pub fn all_instance_health(&self, state: &State) -> Vec<(LbName, Vec<InstanceHealth>)> {
        let others = crate::fleet::other_nodes(self);
        state
            .load_balancers
            .keys()
            .map(|lb| {
                let health = self
                    .health_with(state, &others, lb.as_str(), &[])
                    .unwrap_or_default();
                (lb.clone(), health)
            })
            .collect()
    }

    fn health_with(
        &self,
        state: &State,
        others: &[fulcrum_store::NodeRecord],
        name: &str,
        asked: &[String],
    ) -> Result<Vec<InstanceHealth>, ControlError> {
        let name = lb_name(name)?;
        let asked = instance_ids(asked, false)?;
        let lb = state.load_balancer(name.as_str())?;
        if let Some(unknown) = asked
            .iter()
            .find(|id| !lb.instances.contains(id) && state.instance_address(id).is_none())
        {
            return Err(ControlError::new(
                "InvalidInstance",
                format!("The instance {unknown} is not an IP address and not in the inventory"),
            )
            .at("Instances"));
        }
        let ids = if asked.is_empty() {
            &lb.instances
        } else {
            &asked
        };
        Ok(ids
            .iter()
            .map(|id| {
                let status = if !lb.instances.contains(id) {
                    HealthStatus {
                        state: HealthState::OutOfService,
                        reason_code: "ELB",
                        description: "Instance is not currently registered with the LoadBalancer."
                            .into(),
                    }
                } else {
                    // A registration the data plane has not picked up yet is one in progress.
                    self.data_plane
                        .instance_health(&lb.name, id)
                        .map(|own| crate::fleet::fleet_health(others, &lb.name, id, own))
                        .unwrap_or_else(|| match state.instance_address(id) {
                            Some(_) => HealthStatus::registering(),
                            None => HealthStatus::unknown(
                                "The instance is not in the inventory and has no address.",
                            ),
                        })
                };
                InstanceHealth {
                    instance: id.clone(),
                    state: status.state.as_str(),
                    reason_code: status.reason_code,
                    description: status.description,
                }
            })
            .collect())
    }

    /// fulcrum's `PutInventoryInstance`: adds an instance, or moves it to a new address.
    pub fn put_inventory(&self, id: &str, address: &str) -> Result<(), ControlError> {
        let id = InstanceId::parse(id).at("InstanceId")?;
        let address: IpAddr = address.parse().map_err(|_| {
            ControlError::validation(format!(
                "Address '{address}' is not an IPv4 or IPv6 address"
            ))
            .at("Address")
        })?;
        self.update(|s| s.put_inventory(id.clone(), address))
            .map_err(|e| match e.code {
                "InvalidInstance" | "ValidationError" => e.at("InstanceId"),
                _ => e,
            })
    }

    /// fulcrum's `DeleteInventoryInstance`: refused while a load balancer has it registered.
    pub fn delete_inventory(&self, id: &str) -> Result<(), ControlError> {
        let id = InstanceId::parse(id).at("InstanceId")?;
        self.update(|s| s.remove_inventory(&id))
    }
}
