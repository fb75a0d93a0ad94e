//! The instance inventory (fulcrum's own: an instance id names an address), and each
//! instance's registrations with its health in every load balancer.

use maud::html;

use super::{done_notice, submitted};
use crate::layout::{csrf, error_of, form_error, input, page, Failure, Section};
use crate::reply::Reply;
use crate::Ctx;

const ELB: &str = "elasticloadbalancing";

pub(crate) fn list(ctx: &Ctx<'_>, shown: Option<&Failure>) -> Reply {
    let snapshot = ctx.control.snapshot();
    let state = &snapshot.state;
    let editable = ctx.can_change();
    let err = error_of(shown, "put");
    let f = submitted(ctx, shown, "put");
    // Every registration's health, by instance.
    let health: Vec<(String, String, fulcrum_control::InstanceHealth)> = ctx
        .control
        .all_instance_health(state)
        .into_iter()
        .flat_map(|(lb, all)| {
            all.into_iter()
                .map(move |h| (h.instance.to_string(), lb.to_string(), h))
        })
        .collect();
    let body = html! {
        h1 { "Instances" }
        (done_notice(ctx))
        (form_error(
            shown.filter(|f| f.form == "delete" || !editable).map(|f| &f.error),
            &[] as &[&str],
        ))
        table.list data-health="/console/instances/health" {
            thead { tr {
                th scope="col" { "Instance" } th scope="col" { "Address" }
                th scope="col" { "Load balancers and health" } th scope="col" { span.sr { "Actions" } }
            } }
            tbody {
                @for (id, entry) in &state.inventory {
                    tr data-instance=(id) {
                        th scope="row" { (id) }
                        td.mono { (entry.address) }
                        td {
                            @for (_, lb, h) in health.iter().filter(|(i, _, _)| *i == id.to_string()) {
                                a href={ "/console/load-balancers/" (lb) } { (lb) } " "
                                span.state.badge.ok[h.in_service()].bad[!h.in_service()] title=(h.description)
                                    data-lb=(lb) data-instance=(id) { (h.state) }
                                " "
                            }
                        }
                        td {
                            @if editable {
                                form.inline method="post" action={ "/console/instances/" (id) "/delete" } {
                                    (csrf(ctx.session))
                                    button.danger type="submit" aria-label={ "Remove " (id) " from the inventory" } { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if editable {
            section aria-labelledby="put-h" {
                h2 id="put-h" { "Add or move an instance" }
                form method="post" action="/console/instances" {
                    (csrf(ctx.session))
                    (form_error(err, &["InstanceId", "Address"]))
                    div.row {
                        (input("Instance id", "InstanceId", "text", f.map_or("", |f| f.get("InstanceId")), err, Some("i-0123abcd, or any name")))
                        (input("Address", "Address", "text", f.map_or("", |f| f.get("Address")), err, Some("IPv4 or IPv6")))
                    }
                    button.primary type="submit" { "Save instance" }
                }
            }
        }
    };
    let status = super::status_of(shown);
    Reply::page(
        status,
        page(
            "Instances",
            Some(ctx.session),
            Some(Section::Instances),
            body,
        ),
    )
}

/// `POST /instances`: adds an instance or moves it.
pub(crate) fn put(ctx: &Ctx<'_>) -> Reply {
    let f = &ctx.req.form;
    let id = f.get("InstanceId");
    match ctx.change(
        ELB,
        "PutInventoryInstance",
        &format!("InstanceId={id}"),
        |c| c.put_inventory(id, f.get("Address")),
    ) {
        Ok(()) => Reply::redirect(format!("/console/instances?done=Saved+{id}")),
        Err(e) => list(ctx, Some(&Failure::new("put", e))),
    }
}

/// `POST /instances/ID/delete`.
pub(crate) fn delete(ctx: &Ctx<'_>, id: &str) -> Reply {
    match ctx.change(
        ELB,
        "DeleteInventoryInstance",
        &format!("InstanceId={id}"),
        |c| c.delete_inventory(id),
    ) {
        Ok(()) => Reply::redirect(format!("/console/instances?done=Removed+{id}")),
        Err(e) => list(ctx, Some(&Failure::new("delete", e))),
    }
}

/// `GET /instances/health`: every registration's health now, for the page to refresh.
pub(crate) fn health_json(ctx: &Ctx<'_>) -> Reply {
    let snapshot = ctx.control.snapshot();
    let all: Vec<serde_json::Value> = ctx
        .control
        .all_instance_health(&snapshot.state)
        .iter()
        .flat_map(|(lb, health)| health.iter().map(|h| super::health_entry(lb.as_str(), h)))
        .collect();
    Reply::json(serde_json::json!({ "instances": all }))
}
