//! fulcrum's own actions for the instance inventory: an instance id names an address, so that
//! load balancers can register instances by id as on EC2.
//!
//! - `PutInventoryInstance`: `InstanceId`, `Address` (IPv4 or IPv6) — adds or moves an instance.
//! - `DeleteInventoryInstance`: `InstanceId` — refused while a load balancer has it registered.
//! - `DescribeInventory`: lists `Instances` with `InstanceId` and `Address`.

use std::net::IpAddr;

use fulcrum_model::InstanceId;

use super::{answer, done, update};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn put(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let id = InstanceId::parse(p.required("InstanceId")?)?;
    let text = p.required("Address")?;
    let address: IpAddr = text.parse().map_err(|_| {
        ApiError::validation(format!("Address '{text}' is not an IPv4 or IPv6 address"))
    })?;
    update(call, |s| s.put_inventory(id.clone(), address))?;
    Ok(done(answer("PutInventoryInstance"), "PutInventoryInstance"))
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    let id = InstanceId::parse(call.params.required("InstanceId")?)?;
    update(call, |s| s.remove_inventory(&id))?;
    Ok(done(
        answer("DeleteInventoryInstance"),
        "DeleteInventoryInstance",
    ))
}

pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    let snapshot = call.api.store.snapshot();
    let mut x = answer("DescribeInventory");
    x.list("Instances", &snapshot.state.inventory, |x, (id, entry)| {
        x.text("InstanceId", id).text("Address", entry.address);
    });
    Ok(done(x, "DescribeInventory"))
}
