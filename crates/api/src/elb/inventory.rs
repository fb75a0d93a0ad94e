//! fulcrum's own actions for the instance inventory: an instance id names an address, so that
//! load balancers can register instances by id as on EC2.
//!
//! - `PutInventoryInstance`: `InstanceId`, `Address` (IPv4 or IPv6) — adds or moves an instance.
//! - `DeleteInventoryInstance`: `InstanceId` — refused while a load balancer has it registered.
//! - `DescribeInventory`: lists `Instances` with `InstanceId` and `Address`.

use super::{answer, done};
use crate::error::ApiError;
use crate::xml::Xml;
use crate::Call;

pub(crate) fn put(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    call.ctl
        .put_inventory(p.required("InstanceId")?, p.required("Address")?)?;
    Ok(done(answer("PutInventoryInstance"), "PutInventoryInstance"))
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    call.ctl
        .delete_inventory(call.params.required("InstanceId")?)?;
    Ok(done(
        answer("DeleteInventoryInstance"),
        "DeleteInventoryInstance",
    ))
}

pub(crate) fn describe(call: &Call<'_>) -> Result<Xml, ApiError> {
    let snapshot = call.ctl.snapshot();
    let mut x = answer("DescribeInventory");
    x.list("Instances", &snapshot.state.inventory, |x, (id, entry)| {
        x.text("InstanceId", id).text("Address", entry.address);
    });
    Ok(done(x, "DescribeInventory"))
}
