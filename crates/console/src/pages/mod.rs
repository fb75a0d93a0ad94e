//! The console's pages, by section; `route` maps a path to its page.

pub(crate) mod certificates;
pub(crate) mod instances;
pub(crate) mod load_balancers;
pub(crate) mod monitoring;
pub(crate) mod sign_in;
pub(crate) mod wizard;

use fulcrum_model::State;
use http::{Method, StatusCode};
use maud::{html, Markup};

use crate::form::Form;
use crate::layout::{notice, page, Failure};
use crate::reply::Reply;
use crate::Ctx;

pub(crate) fn route(ctx: &Ctx<'_>) -> Reply {
    let path = ctx.req.path.trim_start_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let post = ctx.req.method == Method::POST;
    match (post, segments.as_slice()) {
        (false, [""]) => Reply::redirect("/console/load-balancers"),
        (false, ["load-balancers"]) => load_balancers::list(ctx),
        (false, ["load-balancers", "new"]) => wizard::show(ctx, None),
        (true, ["load-balancers", "new"]) => wizard::create(ctx),
        (false, ["load-balancers", name]) => load_balancers::detail(ctx, name, None),
        (false, ["load-balancers", name, "health"]) => load_balancers::health_json(ctx, name),
        (false, ["load-balancers", name, "monitoring"]) => monitoring::show(ctx, name),
        (true, ["load-balancers", name, action]) => load_balancers::change(ctx, name, action),
        (false, ["certificates"]) => certificates::list(ctx, None),
        (true, ["certificates"]) => certificates::upload(ctx),
        (true, ["certificates", name, action]) => certificates::change(ctx, name, action),
        (false, ["instances"]) => instances::list(ctx, None),
        (false, ["instances", "health"]) => instances::health_json(ctx),
        (true, ["instances"]) => instances::put(ctx),
        (true, ["instances", id, "delete"]) => instances::delete(ctx, id),
        _ => not_found(ctx, "There is no such page."),
    }
}

pub(crate) fn not_found(ctx: &Ctx<'_>, what: &str) -> Reply {
    Reply::page(
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            Some(ctx.session),
            None,
            html! { h1 { "Not found" } p { (what) } p { a href="/console/load-balancers" { "Load balancers" } } },
        ),
    )
}

/// The status of a page that shows `shown`: 403 for a change the key may not make, 400 for
/// one refused otherwise.
pub(crate) fn status_of(shown: Option<&Failure>) -> StatusCode {
    match shown {
        None => StatusCode::OK,
        Some(f) if f.error.code == "AccessDenied" => StatusCode::FORBIDDEN,
        Some(_) => StatusCode::BAD_REQUEST,
    }
}

/// One instance's health as the pages' script reads it.
pub(crate) fn health_entry(lb: &str, h: &fulcrum_control::InstanceHealth) -> serde_json::Value {
    serde_json::json!({
        "lb": lb,
        "instance": h.instance.to_string(),
        "state": h.state,
        "reason": format!("{}: {}", h.reason_code, h.description),
    })
}

/// The notice a change left (`?done=...` on the page it redirected to).
pub(crate) fn done_notice(ctx: &Ctx<'_>) -> Markup {
    notice(ctx.req.query.opt("done").as_deref())
}

/// The submitted form, when the page answers a failure of form `name` (so that what the
/// operator typed is shown again).
pub(crate) fn submitted<'a>(
    ctx: &'a Ctx<'_>,
    shown: Option<&Failure>,
    name: &str,
) -> Option<&'a Form> {
    shown.filter(|f| f.form == name).map(|_| &ctx.req.form)
}

/// Uploaded certificates for a select: (name, "name — domains, expires ...").
pub(crate) fn certificate_options(state: &State) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = state
        .certificates
        .values()
        .map(|c| {
            let domains = fulcrum_tls::summarize_certificate(&c.body_pem)
                .map(|s| s.dns_names.join(", "))
                .unwrap_or_default();
            (
                c.name.clone(),
                format!(
                    "{} — {} (expires {})",
                    c.name,
                    domains,
                    crate::layout::date(c.expiration)
                ),
            )
        })
        .collect();
    all.sort();
    all
}
