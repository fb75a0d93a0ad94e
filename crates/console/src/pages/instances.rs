//! The instance inventory (fulcrum's own: an instance id names an address), and each
//! instance's registrations with its health in every load balancer.

use http::StatusCode;
use maud::html;

use super::{done_notice, submitted};
use crate::layout::{csrf, error_of, form_error, input, page, Failure, Section};
use crate::reply::Reply;
use crate::{failure, Ctx};

const ELB: &str = "elasticloadbalancing";

pub(crate) fn list(ctx: &Ctx<'_>, shown: Option<&Failure>) -> Reply {
    let snapshot = ctx.control.snapshot();
    let state = &snapshot.state;
    let editable = ctx.can_change();
    let err = error_of(shown, "put");
    let f = submitted(ctx, shown, "put");
    // Every registration's health, by instance.
    let mut health: Vec<(String, String, fulcrum_control::InstanceHealth)> = Vec::new();
    for lb in state.load_balancers.values() {
        for h in ctx
            .control
            .instance_health(state, lb.name.as_str(), &[])
            .unwrap_or_default()
        {
            health.push((h.instance.to_string(), lb.name.to_string(), h));
        }
    }
    let body = html! {
        h1 { "Instances" }
        (done_notice(ctx))
        (form_error(
            shown.filter(|f| f.form == "delete" || !editable).map(|f| &f.error),
            &[] as &[&str],
        ))
        table.list {
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
                                span.badge.ok[h.in_service()].bad[!h.in_service()] title=(h.description) { (h.state) }
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
    let status = if shown.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
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
        Err(e) => list(ctx, Some(&failure("put", e))),
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
        Err(e) => list(ctx, Some(&failure("delete", e))),
    }
}
