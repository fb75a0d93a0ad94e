//! The load balancers: the list (health and traffic at a glance), a detail page with every edit
//! (listeners, a listener's certificate, stickiness, health check, instances, attributes), and
//! deletion with confirmation. Instance health on the page refreshes itself (`/health`).

use fulcrum_control::{
    AttributeChanges, ControlError, HealthCheckSpec, InstanceHealth, ListenerSpec,
};
use fulcrum_model::{LoadBalancer, PolicyKind, State};
use fulcrum_telemetry::series::{Metric, Query};
use http::StatusCode;
use maud::{html, Markup};

use super::{certificate_options, done_notice, not_found, submitted};
use crate::form::split_ids;
use crate::layout::{
    csrf, error_of, field_error, form_error, input, input_as, page, protocols, select, select_as,
    Failure, Section,
};
use crate::reply::Reply;
use crate::Ctx;

const ELB: &str = "elasticloadbalancing";

/// Requests and 5xx per second since the start of the minute five minutes ago (the minute
/// under way included).
fn traffic(ctx: &Ctx<'_>, lb: &str) -> (f64, f64) {
    let now = fulcrum_telemetry::series::now();
    let start = (now - 300).div_euclid(60) * 60;
    let seconds = (now - start).max(1) as f64;
    let sum = |metric| {
        ctx.control
            .series
            .statistics(&Query {
                metric,
                load_balancer: Some(lb),
                start,
                end: now + 60,
                period: 360,
            })
            .map(|periods| periods.iter().map(|(_, s)| s.sum).sum::<f64>())
            .unwrap_or(0.0)
    };
    let requests = sum(Metric::RequestCount);
    let errors = sum(Metric::HttpCodeElb5xx) + sum(Metric::HttpCodeBackend5xx);
    (requests / seconds, errors / seconds)
}

fn listener_text(l: &fulcrum_model::Listener) -> String {
    format!(
        "{}:{} → {}:{}",
        l.protocol, l.port, l.instance_protocol, l.instance_port
    )
}

pub(crate) fn list(ctx: &Ctx<'_>) -> Reply {
    let snapshot = ctx.control.snapshot();
    let state = &snapshot.state;
    let health = ctx.control.all_instance_health(state);
    let body = html! {
        div.title-row {
            h1 { "Load balancers" }
            @if ctx.can_change() {
                a.button.primary href="/console/load-balancers/new" { "Create load balancer" }
            }
        }
        (done_notice(ctx))
        @if state.load_balancers.is_empty() {
            p.empty { "No load balancers yet." }
        } @else {
            table.list {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "DNS name" } th scope="col" { "Listeners" }
                    th scope="col" { "Instances" } th scope="col" { "Requests/s" } th scope="col" { "5xx/s" }
                } }
                tbody {
                    @for (lb, health) in state.load_balancers.values().zip(&health).map(|(lb, (_, h))| (lb, h)) {
                        @let up = health.iter().filter(|h| h.in_service()).count();
                        @let (rps, errors) = traffic(ctx, lb.name.as_str());
                        tr {
                            th scope="row" { a href={ "/console/load-balancers/" (lb.name) } { (lb.name) } }
                            td.mono { (ctx.control.dns_name(lb.name.as_str())) }
                            td { @for l in &lb.listeners { span.tag { (listener_text(l)) } " " } }
                            td {
                                span.badge.ok[up == health.len() && up > 0].bad[up < health.len()] {
                                    (up) " of " (health.len()) " InService"
                                }
                            }
                            td.num { (format!("{rps:.1}")) }
                            td.num { (format!("{errors:.2}")) }
                        }
                    }
                }
            }
        }
    };
    Reply::ok(page(
        "Load balancers",
        Some(ctx.session),
        Some(Section::LoadBalancers),
        body,
    ))
}

pub(crate) fn detail(ctx: &Ctx<'_>, name: &str, shown: Option<&Failure>) -> Reply {
    let snapshot = ctx.control.snapshot();
    let state = &snapshot.state;
    let Some(lb) = fulcrum_model::LbName::parse(name)
        .ok()
        .and_then(|n| state.load_balancers.get(&n))
    else {
        return not_found(ctx, &format!("There is no load balancer named {name}."));
    };
    let status = super::status_of(shown);
    let health = ctx
        .control
        .instance_health(state, lb.name.as_str(), &[])
        .unwrap_or_default();
    let editable = ctx.can_change();
    let base = format!("/console/load-balancers/{}", lb.name);
    let certs = certificate_options(state);
    let body = html! {
        div.title-row {
            h1 { (lb.name) }
            a.button href={ (base) "/monitoring" } { "Monitoring" }
        }
        p.mono { (ctx.control.dns_name(lb.name.as_str())) }
        (done_notice(ctx))
        // A read-only key sees no forms: what it was refused is shown here.
        (form_error(shown.filter(|_| !editable).map(|f| &f.error), &[] as &[&str]))
        section aria-labelledby="listeners-h" {
            h2 id="listeners-h" { "Listeners" }
            (form_error(
                shown
                    .filter(|f| f.form == "listener-edit" || f.form.starts_with("certificate-") || f.form.starts_with("stickiness-"))
                    .map(|f| &f.error),
                &["SSLCertificateId", "CookieExpirationPeriod"],
            ))
            table.list {
                thead { tr { th scope="col" { "Listener" } th scope="col" { "Certificate" } th scope="col" { "Stickiness" } th scope="col" { span.sr { "Actions" } } } }
                tbody {
                    @for l in &lb.listeners {
                        tr {
                            th scope="row" { (listener_text(l)) }
                            td {
                                @if l.protocol.is_tls() {
                                    @let current = l.certificates.first().and_then(|id| state.certificates.get(id));
                                    @if editable {
                                        form.inline method="post" action={ (base) "/certificate" } {
                                            (csrf(ctx.session))
                                            input type="hidden" name="LoadBalancerPort" value=(l.port);
                                            (select_as(&format!("SSLCertificateId-{}", l.port), &format!("Certificate of port {}", l.port), "SSLCertificateId", &certs,
                                                current.map_or("", |c| c.name.as_str()), error_of(shown, &format!("certificate-{}", l.port))))
                                            button type="submit" { "Change" }
                                        }
                                    } @else {
                                        (current.map_or("-", |c| c.name.as_str()))
                                    }
                                } @else { "-" }
                            }
                            td {
                                @if l.protocol.is_http() {
                                    @let sticky = l.policy_names.iter().filter_map(|n| lb.policy(n)).find_map(|p| match &p.kind {
                                        PolicyKind::LbCookieStickiness { expiration_secs } => Some(*expiration_secs),
                                        _ => None,
                                    });
                                    @let app_cookie = l.policy_names.iter().filter_map(|n| lb.policy(n)).any(|p| matches!(p.kind, PolicyKind::AppCookieStickiness { .. }));
                                    @if editable && !app_cookie {
                                        form.inline method="post" action={ (base) "/stickiness" } {
                                            (csrf(ctx.session))
                                            input type="hidden" name="LoadBalancerPort" value=(l.port);
                                            label { input type="checkbox" name="Enabled" value="on" checked[sticky.is_some()]; " Sticky" }
                                            (input_as(&format!("CookieExpirationPeriod-{}", l.port), "Cookie lifetime (s, empty: browser session)", "CookieExpirationPeriod", "number",
                                                &sticky.flatten().map(|s| s.to_string()).unwrap_or_default(), error_of(shown, &format!("stickiness-{}", l.port)), None))
                                            button type="submit" { "Save" }
                                        }
                                    } @else if app_cookie { "application cookie" }
                                    @else if let Some(e) = sticky { "LB cookie" (e.map(|s| format!(", {s} s")).unwrap_or_default()) }
                                    @else { "off" }
                                } @else { "-" }
                            }
                            td {
                                @if editable {
                                    form.inline method="post" action={ (base) "/delete-listener" } {
                                        (csrf(ctx.session))
                                        input type="hidden" name="LoadBalancerPort" value=(l.port);
                                        button.danger type="submit" aria-label={ "Delete listener " (l.port) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if editable {
                @let err = error_of(shown, "listeners");
                @let f = submitted(ctx, shown, "listeners");
                details open[err.is_some()] {
                    summary { "Add a listener" }
                    form method="post" action={ (base) "/listeners" } {
                        (csrf(ctx.session))
                        (form_error(err, &["Listeners.member.1.Protocol", "Listeners.member.1.LoadBalancerPort",
                            "Listeners.member.1.InstanceProtocol", "Listeners.member.1.InstancePort", "Listeners.member.1.SSLCertificateId"]))
                        div.row {
                            (select("Protocol", "Listeners.member.1.Protocol", &protocols(), f.map_or("HTTP", |f| f.get("Listeners.member.1.Protocol")), err))
                            (input("Port", "Listeners.member.1.LoadBalancerPort", "number", f.map_or("", |f| f.get("Listeners.member.1.LoadBalancerPort")), err, None))
                            (select("Instance protocol", "Listeners.member.1.InstanceProtocol", &protocols(), f.map_or("HTTP", |f| f.get("Listeners.member.1.InstanceProtocol")), err))
                            (input("Instance port", "Listeners.member.1.InstancePort", "number", f.map_or("", |f| f.get("Listeners.member.1.InstancePort")), err, None))
                            (select("Certificate (HTTPS, SSL)", "Listeners.member.1.SSLCertificateId", &with_none(&certs), f.map_or("", |f| f.get("Listeners.member.1.SSLCertificateId")), err))
                        }
                        button type="submit" { "Add listener" }
                    }
                }
            }
        }
        (instances_section(ctx, state, lb, &health, shown, &base))
        (health_check_section(ctx, lb, shown, &base))
        (attributes_section(ctx, lb, shown, &base))
        @if editable {
            section aria-labelledby="delete-h" {
                h2 id="delete-h" { "Delete" }
                @let err = error_of(shown, "delete");
                form method="post" action={ (base) "/delete" } {
                    (csrf(ctx.session))
                    p { "Deleting closes its listeners at once. The instances and certificates stay." }
                    (input(&format!("Type {} to confirm", lb.name), "Confirm", "text", "", err, None))
                    (form_error(err, &["Confirm"]))
                    button.danger type="submit" { "Delete load balancer" }
                }
            }
        }
    };
    Reply::page(
        status,
        page(
            lb.name.as_str(),
            Some(ctx.session),
            Some(Section::LoadBalancers),
            body,
        ),
    )
}

fn with_none(options: &[(String, String)]) -> Vec<(String, String)> {
    let mut all = vec![(String::new(), "(none)".to_owned())];
    all.extend(options.iter().cloned());
    all
}

fn instances_section(
    ctx: &Ctx<'_>,
    state: &State,
    lb: &LoadBalancer,
    health: &[InstanceHealth],
    shown: Option<&Failure>,
    base: &str,
) -> Markup {
    let editable = ctx.can_change();
    let unregistered: Vec<_> = state
        .inventory
        .iter()
        .filter(|(id, _)| !lb.instances.contains(id))
        .collect();
    html! {
        section aria-labelledby="instances-h" {
            h2 id="instances-h" { "Instances" }
            @let err = error_of(shown, "instances");
            (form_error(err, &["Instances"]))
            table.list data-health={ (base) "/health" } {
                thead { tr { th scope="col" { "Instance" } th scope="col" { "Address" } th scope="col" { "State" } th scope="col" { "Reason" } th scope="col" { span.sr { "Actions" } } } }
                tbody {
                    @for h in health {
                        tr data-instance=(h.instance) {
                            th scope="row" { (h.instance) }
                            td.mono { (state.instance_address(&h.instance).map(|a| a.to_string()).unwrap_or_default()) }
                            td { span.state.badge.ok[h.in_service()].bad[!h.in_service()] data-lb=(lb.name) data-instance=(h.instance) { (h.state) } }
                            td.reason data-lb=(lb.name) data-instance=(h.instance) { (h.reason_code) ": " (h.description) }
                            td {
                                @if editable {
                                    form.inline method="post" action={ (base) "/deregister" } {
                                        (csrf(ctx.session))
                                        input type="hidden" name="Instances" value=(h.instance);
                                        button type="submit" aria-label={ "Deregister " (h.instance) } { "Deregister" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if editable {
                form method="post" action={ (base) "/instances" } {
                    (csrf(ctx.session))
                    fieldset {
                        legend { "Register instances" }
                        @for (id, entry) in &unregistered {
                            label.check { input type="checkbox" name="Instances" value=(id); " " (id) " (" (entry.address) ")" }
                        }
                        (input("Or instance ids / IP addresses, separated by spaces or commas", "InstancesText", "text",
                            submitted(ctx, shown, "instances").map_or("", |f| f.get("InstancesText")), err, None))
                        (field_error(err, "Instances"))
                    }
                    button type="submit" { "Register" }
                }
            }
        }
    }
}

fn health_check_section(
    ctx: &Ctx<'_>,
    lb: &LoadBalancer,
    shown: Option<&Failure>,
    base: &str,
) -> Markup {
    let hc = &lb.health_check;
    let err = error_of(shown, "health-check");
    let f = submitted(ctx, shown, "health-check");
    let v = |name: &str, current: String| f.map_or(current, |f| f.get(name).to_owned());
    html! {
        section aria-labelledby="hc-h" {
            h2 id="hc-h" { "Health check" }
            form method="post" action={ (base) "/health-check" } {
                (csrf(ctx.session))
                (form_error(err, &["HealthCheck.Target", "HealthCheck.Interval", "HealthCheck.Timeout", "HealthCheck.HealthyThreshold", "HealthCheck.UnhealthyThreshold"]))
                fieldset disabled[!ctx.can_change()] {
                    legend.sr { "Health check" }
                    div.row {
                        (input("Target", "HealthCheck.Target", "text", &v("HealthCheck.Target", hc.target.to_string()), err, Some("HTTP:80/path, HTTPS:443/path, TCP:80 or SSL:443")))
                        (input("Interval (s)", "HealthCheck.Interval", "number", &v("HealthCheck.Interval", hc.interval_secs.to_string()), err, None))
                        (input("Timeout (s)", "HealthCheck.Timeout", "number", &v("HealthCheck.Timeout", hc.timeout_secs.to_string()), err, None))
                        (input("Healthy threshold", "HealthCheck.HealthyThreshold", "number", &v("HealthCheck.HealthyThreshold", hc.healthy_threshold.to_string()), err, None))
                        (input("Unhealthy threshold", "HealthCheck.UnhealthyThreshold", "number", &v("HealthCheck.UnhealthyThreshold", hc.unhealthy_threshold.to_string()), err, None))
                    }
                    button type="submit" { "Save health check" }
                }
            }
        }
    }
}

fn attributes_section(
    ctx: &Ctx<'_>,
    lb: &LoadBalancer,
    shown: Option<&Failure>,
    base: &str,
) -> Markup {
    let a = &lb.attributes;
    let err = error_of(shown, "attributes");
    let log = &a.access_log;
    html! {
        section aria-labelledby="attr-h" {
            h2 id="attr-h" { "Attributes" }
            form method="post" action={ (base) "/attributes" } {
                (csrf(ctx.session))
                (form_error(err, &["IdleTimeout", "DrainingTimeout", "EmitInterval"]))
                fieldset disabled[!ctx.can_change()] {
                    legend.sr { "Attributes" }
                    div.row {
                        (input("Idle timeout (s)", "IdleTimeout", "number", &a.idle_timeout_secs.to_string(), err, None))
                        label.check { input type="checkbox" name="DrainingEnabled" value="on" checked[a.draining_enabled]; " Connection draining" }
                        (input("Draining timeout (s)", "DrainingTimeout", "number", &a.draining_timeout_secs.to_string(), err, None))
                    }
                    div.row {
                        label.check { input type="checkbox" name="AccessLogEnabled" value="on" checked[log.enabled]; " Access logs" }
                        (select("Emit interval", "EmitInterval", &[("60".into(), "60 minutes".into()), ("5".into(), "5 minutes".into())],
                            &log.emit_interval.unwrap_or(60).to_string(), err))
                        (input("Bucket name (directory)", "S3BucketName", "text", log.s3_bucket_name.as_deref().unwrap_or(""), err, None))
                        (input("Prefix", "S3BucketPrefix", "text", log.s3_bucket_prefix.as_deref().unwrap_or(""), err, None))
                    }
                    button type="submit" { "Save attributes" }
                }
            }
        }
    }
}

/// `GET /load-balancers/NAME/health`: the instances' health now, for the page to refresh.
pub(crate) fn health_json(ctx: &Ctx<'_>, name: &str) -> Reply {
    let snapshot = ctx.control.snapshot();
    match ctx.control.instance_health(&snapshot.state, name, &[]) {
        Ok(health) => Reply::json(serde_json::json!({
            "instances": health.iter().map(|h| super::health_entry(name, h)).collect::<Vec<_>>()
        })),
        Err(e) => Reply::text(StatusCode::NOT_FOUND, e.message),
    }
}

/// `POST /load-balancers/NAME/ACTION`.
pub(crate) fn change(ctx: &Ctx<'_>, name: &str, action: &str) -> Reply {
    let f = &ctx.req.form;
    let port = |field: &str| -> Result<u16, ControlError> { f.number(field, "The port") };
    let resources = format!("LoadBalancerName={name}");
    let (form, outcome): (String, Result<&str, ControlError>) = match action {
        "listeners" => (
            "listeners".into(),
            (|| {
                let spec = ListenerSpec {
                    protocol: f.get("Listeners.member.1.Protocol").to_owned(),
                    load_balancer_port: f
                        .number("Listeners.member.1.LoadBalancerPort", "The port")?,
                    instance_protocol: f.opt("Listeners.member.1.InstanceProtocol"),
                    instance_port: f
                        .number("Listeners.member.1.InstancePort", "The instance port")?,
                    certificate: f.opt("Listeners.member.1.SSLCertificateId"),
                };
                ctx.change(ELB, "CreateLoadBalancerListeners", &resources, |c| {
                    c.create_listeners(name, &[spec])
                })?;
                Ok("Listener added.")
            })(),
        ),
        "delete-listener" => (
            "listener-edit".into(),
            (|| {
                let p = port("LoadBalancerPort")?;
                ctx.change(ELB, "DeleteLoadBalancerListeners", &resources, |c| {
                    c.delete_listeners(name, &[u32::from(p)])
                })?;
                Ok("Listener deleted.")
            })(),
        ),
        "certificate" => {
            let p = f.get("LoadBalancerPort").to_owned();
            (
                format!("certificate-{p}"),
                (|| {
                    let p = port("LoadBalancerPort")?;
                    ctx.change(
                        ELB,
                        "SetLoadBalancerListenerSSLCertificate",
                        &resources,
                        |c| {
                            c.set_listener_certificate(
                                name,
                                u32::from(p),
                                f.get("SSLCertificateId"),
                            )
                        },
                    )?;
                    Ok("Certificate changed: new connections get it now.")
                })(),
            )
        }
        "stickiness" => {
            let p = f.get("LoadBalancerPort").to_owned();
            (
                format!("stickiness-{p}"),
                (|| {
                    let p = port("LoadBalancerPort")?;
                    let sticky = if f.checked("Enabled") {
                        Some(f.opt_number("CookieExpirationPeriod", "The cookie lifetime")?)
                    } else {
                        None
                    };
                    ctx.change(ELB, "SetLoadBalancerPoliciesOfListener", &resources, |c| {
                        c.set_stickiness(name, p, sticky)
                    })?;
                    Ok("Stickiness saved.")
                })(),
            )
        }
        "health-check" => (
            "health-check".into(),
            (|| {
                let spec = HealthCheckSpec {
                    target: f.get("HealthCheck.Target").to_owned(),
                    interval_secs: f.number("HealthCheck.Interval", "Interval")?,
                    timeout_secs: f.number("HealthCheck.Timeout", "Timeout")?,
                    healthy_threshold: f
                        .number("HealthCheck.HealthyThreshold", "HealthyThreshold")?,
                    unhealthy_threshold: f
                        .number("HealthCheck.UnhealthyThreshold", "UnhealthyThreshold")?,
                };
                ctx.change(ELB, "ConfigureHealthCheck", &resources, |c| {
                    c.configure_health_check(name, spec)
                })?;
                Ok("Health check saved.")
            })(),
        ),
        "instances" | "deregister" => (
            "instances".into(),
            (|| {
                let mut chosen = f.all("Instances");
                chosen.extend(split_ids(f.get("InstancesText")));
                if action == "instances" {
                    ctx.change(ELB, "RegisterInstancesWithLoadBalancer", &resources, |c| {
                        c.register_instances(name, &chosen)
                    })?;
                    Ok("Instances registered.")
                } else {
                    ctx.change(
                        ELB,
                        "DeregisterInstancesFromLoadBalancer",
                        &resources,
                        |c| c.deregister_instances(name, &chosen),
                    )?;
                    Ok("Instance deregistered.")
                }
            })(),
        ),
        "attributes" => (
            "attributes".into(),
            (|| {
                let changes = AttributeChanges {
                    idle_timeout_secs: Some(f.number("IdleTimeout", "The idle timeout")?),
                    draining_enabled: Some(f.checked("DrainingEnabled")),
                    draining_timeout_secs: Some(
                        f.number("DrainingTimeout", "The draining timeout")?,
                    ),
                    access_log_enabled: Some(f.checked("AccessLogEnabled")),
                    access_log_interval: Some(f.number("EmitInterval", "The emit interval")?),
                    access_log_bucket: f.opt("S3BucketName"),
                    access_log_prefix: f.opt("S3BucketPrefix"),
                    ..AttributeChanges::default()
                };
                ctx.change(ELB, "ModifyLoadBalancerAttributes", &resources, |c| {
                    c.modify_attributes(name, &changes)
                })?;
                Ok("Attributes saved.")
            })(),
        ),
        "delete" => {
            if f.get("Confirm") != name {
                (
                    "delete".into(),
                    Err(ControlError::validation(format!(
                        "Type the load balancer's name, {name}, to delete it"
                    ))
                    .at("Confirm")),
                )
            } else {
                return match ctx.change(ELB, "DeleteLoadBalancer", &resources, |c| {
                    c.delete_load_balancer(name)
                }) {
                    Ok(()) => {
                        Reply::redirect(format!("/console/load-balancers?done=Deleted+{name}"))
                    }
                    Err(e) => detail(ctx, name, Some(&Failure::new("delete", e))),
                };
            }
        }
        _ => return not_found(ctx, "There is no such action."),
    };
    match outcome {
        Ok(text) => Reply::redirect(format!(
            "/console/load-balancers/{name}?done={}",
            text.replace(' ', "+")
        )),
        Err(e) => detail(ctx, name, Some(&Failure::new(form, e))),
    }
}
