//! The create wizard, in ELB's steps: name and listeners; security settings, where the HTTPS
//! and SSL listeners either take an existing certificate or one uploaded in the same step,
//! with the security policy; health check; instances; tags; review. The steps are parts of
//! one form (the script shows one at a time); the service layer creates everything in one
//! change, so that a step that fails leaves nothing half-made, and its error is shown beside
//! the field, in the step that holds it.

use fulcrum_control::{ControlError, HealthCheckSpec, Launch, ListenerSpec, NewLoadBalancer};
use fulcrum_model::Tag;
use http::StatusCode;
use maud::{html, Markup};

use super::{certificate_options, submitted};
use crate::form::{split_ids, Form};
use crate::layout::{
    csrf, error_of, field_error, form_error, input, page, protocols, select, textarea, Failure,
    Section,
};
use crate::reply::Reply;
use crate::Ctx;

const FORM: &str = "wizard";
const LISTENER_FIELDS: [&str; 4] = [
    "Protocol",
    "LoadBalancerPort",
    "InstanceProtocol",
    "InstancePort",
];
const DEFAULT_POLICY: &str = "ELBSecurityPolicy-TLS-1-2-2017-01";

pub(crate) fn show(ctx: &Ctx<'_>, shown: Option<&Failure>) -> Reply {
    if !ctx.can_change() {
        return Reply::page(
            StatusCode::FORBIDDEN,
            page(
                "Create load balancer",
                Some(ctx.session),
                Some(Section::LoadBalancers),
                html! { h1 { "Create load balancer" } p { "This access key is read-only: it cannot create load balancers." } },
            ),
        );
    }
    let snapshot = ctx.control.snapshot();
    let state = &snapshot.state;
    let err = error_of(shown, FORM);
    let empty = Form::default();
    let f = submitted(ctx, shown, FORM).unwrap_or(&empty);
    let first_time = shown.is_none();
    let v = |name: &str, default: &str| -> String {
        if first_time {
            default.to_owned()
        } else {
            f.get(name).to_owned()
        }
    };
    let mut rows: Vec<usize> = listener_rows(f).iter().map(|(n, _)| *n).collect();
    if rows.is_empty() {
        rows.push(1);
    }
    let next = rows.iter().max().copied().unwrap_or(0) + 1;
    rows.push(next);
    let certs = certificate_options(state);
    let source = v(
        "CertificateSource",
        if certs.is_empty() {
            "upload"
        } else {
            "existing"
        },
    );
    let policies: Vec<(String, String)> = fulcrum_tls::PREDEFINED_POLICIES
        .iter()
        .map(|p| (p.name.to_owned(), p.name.to_owned()))
        .collect();
    let step = |n: u8, title: &str, body: Markup| {
        html! {
            fieldset.step data-step=(n) {
                legend { span.stepno { "Step " (n) " of 6" } " " (title) }
                (body)
            }
        }
    };
    let body = html! {
        h1 { "Create load balancer" }
        ol.steps aria-label="Steps" {
            li { "Name and listeners" } li { "Security settings" } li { "Health check" }
            li { "Instances" } li { "Tags" } li { "Review" }
        }
        form #wizard method="post" action="/console/load-balancers/new" {
            (csrf(ctx.session))
            (form_error(err, &known_fields(&rows)))
            (step(1, "Name and listeners", html! {
                (input("Load balancer name", "LoadBalancerName", "text", &v("LoadBalancerName", ""), err,
                    Some("1 to 32 letters, digits and hyphens; not starting or ending with a hyphen")))
                (select("Scheme", "Scheme", &[("internet-facing".into(), "internet-facing".into()), ("internal".into(), "internal".into())],
                    &v("Scheme", "internet-facing"), err))
                table.listeners {
                    caption { "Listeners (leave a row empty to skip it)" }
                    thead { tr { th scope="col" { "Protocol" } th scope="col" { "Port" } th scope="col" { "Instance protocol" } th scope="col" { "Instance port" } } }
                    tbody #listener-rows {
                        @for n in &rows {
                            @let key = |f: &str| format!("Listeners.member.{n}.{f}");
                            @let defaults = if *n == 1 { ("HTTP", "80", "HTTP", "80") } else { ("HTTP", "", "HTTP", "") };
                            tr {
                                td { (select(&format!("Protocol of listener {n}"), &key("Protocol"), &protocols(), &v(&key("Protocol"), defaults.0), err)) }
                                td { (input(&format!("Port of listener {n}"), &key("LoadBalancerPort"), "number", &v(&key("LoadBalancerPort"), defaults.1), err, None)) }
                                td { (select(&format!("Instance protocol of listener {n}"), &key("InstanceProtocol"), &protocols(), &v(&key("InstanceProtocol"), defaults.2), err)) }
                                td { (input(&format!("Instance port of listener {n}"), &key("InstancePort"), "number", &v(&key("InstancePort"), defaults.3), err, None)) }
                            }
                        }
                    }
                }
                (field_error(err, "Listeners"))
                button.js-only type="button" #add-listener { "Add listener" }
            }))
            (step(2, "Security settings", html! {
                p { "For HTTPS and SSL listeners: the certificate the balancer presents, and the security policy. Plain HTTP and TCP listeners skip this step." }
                fieldset.choice {
                    legend { "Certificate" }
                    label.check { input type="radio" name="CertificateSource" value="existing" checked[source == "existing"] disabled[certs.is_empty()]; " Choose an existing certificate" }
                    label.check { input type="radio" name="CertificateSource" value="upload" checked[source == "upload"]; " Upload a new certificate" }
                }
                div data-source="existing" {
                    @if certs.is_empty() {
                        p.empty { "No certificate has been uploaded yet." }
                    } @else {
                        (select("Existing certificate", "SSLCertificateId", &certs, &v("SSLCertificateId", ""), err))
                    }
                }
                div data-source="upload" {
                    (input("Certificate name", "ServerCertificateName", "text", &v("ServerCertificateName", ""), err, None))
                    (textarea("Certificate body (PEM)", "CertificateBody", if first_time { "" } else { f.raw("CertificateBody") }, err,
                        "-----BEGIN CERTIFICATE----- ..."))
                    (textarea("Private key (PEM)", "PrivateKey", "", err, "Never shown again, never logged; stored encrypted."))
                    (textarea("Certificate chain (PEM, optional)", "CertificateChain", if first_time { "" } else { f.raw("CertificateChain") }, err,
                        "The intermediates, issuer after issuer."))
                }
                (select("Security policy", "SecurityPolicy", &policies, &v("SecurityPolicy", DEFAULT_POLICY), err))
            }))
            (step(3, "Health check", html! {
                div.row {
                    (input("Target", "HealthCheck.Target", "text", &v("HealthCheck.Target", "HTTP:80/"), err, Some("HTTP:80/path, HTTPS:443/path, TCP:80 or SSL:443")))
                    (input("Interval (s)", "HealthCheck.Interval", "number", &v("HealthCheck.Interval", "30"), err, None))
                    (input("Timeout (s)", "HealthCheck.Timeout", "number", &v("HealthCheck.Timeout", "5"), err, None))
                    (input("Healthy threshold", "HealthCheck.HealthyThreshold", "number", &v("HealthCheck.HealthyThreshold", "10"), err, None))
                    (input("Unhealthy threshold", "HealthCheck.UnhealthyThreshold", "number", &v("HealthCheck.UnhealthyThreshold", "2"), err, None))
                }
            }))
            (step(4, "Instances", html! {
                @let chosen = f.all("Instances");
                @if state.inventory.is_empty() {
                    p.empty { "The inventory is empty: name instances by IP address below, or add them on the Instances page." }
                }
                @for (id, entry) in &state.inventory {
                    label.check { input type="checkbox" name="Instances" value=(id) checked[chosen.contains(&id.to_string())]; " " (id) " (" (entry.address) ")" }
                }
                (input("Instance ids or IP addresses, separated by spaces or commas", "InstancesText", "text", &v("InstancesText", ""), err, None))
                (field_error(err, "Instances"))
            }))
            (step(5, "Tags", html! {
                table.tags {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "Value" } } }
                    tbody {
                        @for n in 1..=3 {
                            tr {
                                td { (input(&format!("Tag {n} key"), &format!("Tags.member.{n}.Key"), "text", &v(&format!("Tags.member.{n}.Key"), ""), err, None)) }
                                td { (input(&format!("Tag {n} value"), &format!("Tags.member.{n}.Value"), "text", &v(&format!("Tags.member.{n}.Value"), ""), err, None)) }
                            }
                        }
                    }
                }
                (field_error(err, "Tags"))
            }))
            (step(6, "Review", html! {
                div #review aria-live="polite" { p { "Check the settings above, then create the load balancer." } }
            }))
            div.wizard-nav {
                button.js-only type="button" #back { "Back" }
                button.js-only type="button" #next { "Next" }
                button.primary #create type="submit" { "Create load balancer" }
            }
        }
    };
    let status = super::status_of(shown);
    Reply::page(
        status,
        page(
            "Create load balancer",
            Some(ctx.session),
            Some(Section::LoadBalancers),
            body,
        ),
    )
}

/// The fields the wizard shows errors beside.
fn known_fields(rows: &[usize]) -> Vec<String> {
    let mut fields: Vec<String> = [
        "LoadBalancerName",
        "Scheme",
        "Listeners",
        "SSLCertificateId",
        "ServerCertificateName",
        "CertificateBody",
        "PrivateKey",
        "CertificateChain",
        "SecurityPolicy",
        "HealthCheck.Target",
        "HealthCheck.Interval",
        "HealthCheck.Timeout",
        "HealthCheck.HealthyThreshold",
        "HealthCheck.UnhealthyThreshold",
        "Instances",
        "Tags",
    ]
    .map(str::to_owned)
    .to_vec();
    for n in rows {
        for f in LISTENER_FIELDS {
            fields.push(format!("Listeners.member.{n}.{f}"));
        }
    }
    fields
}

/// `POST /load-balancers/new`.
pub(crate) fn create(ctx: &Ctx<'_>) -> Reply {
    let f = &ctx.req.form;
    let name = f.get("LoadBalancerName").to_owned();
    match launch(ctx, f) {
        Ok(()) => Reply::redirect(format!(
            "/console/load-balancers/{name}?done=Created+{name}"
        )),
        Err(e) => show(ctx, Some(&Failure::new(FORM, e))),
    }
}

/// The listener rows filled in: a row with neither port is skipped (its selects always have a
/// value).
fn listener_rows(f: &Form) -> Vec<(usize, Vec<String>)> {
    f.members("Listeners", &LISTENER_FIELDS)
        .into_iter()
        .filter(|(_, row)| !(row[1].is_empty() && row[3].is_empty()))
        .collect()
}

fn launch(ctx: &Ctx<'_>, f: &Form) -> Result<(), ControlError> {
    let rows = listener_rows(f);
    let mut specs = Vec::new();
    for (n, row) in &rows {
        let field = |name: &str| format!("Listeners.member.{n}.{name}");
        let number = |i: usize, name: &str| -> Result<u32, ControlError> {
            row[i].parse().map_err(|_| {
                ControlError::validation(format!("{name} must be a port number, not '{}'", row[i]))
                    .at(field(name))
            })
        };
        specs.push(ListenerSpec {
            protocol: row[0].clone(),
            load_balancer_port: number(1, "LoadBalancerPort")?,
            instance_protocol: Some(row[2].clone()).filter(|p| !p.is_empty()),
            instance_port: number(3, "InstancePort")?,
            certificate: None,
        });
    }
    let tls = specs.iter().any(ListenerSpec::is_tls);
    let mut new_certificate = None;
    if tls {
        if f.get("CertificateSource") == "upload" {
            new_certificate = Some(super::certificates::upload_of(f));
        } else {
            let chosen = f.opt("SSLCertificateId");
            if chosen.is_none() {
                return Err(ControlError::validation(
                    "HTTPS and SSL listeners need a certificate: choose one or upload one",
                )
                .at("SSLCertificateId"));
            }
            for s in specs.iter_mut().filter(|s| s.is_tls()) {
                s.certificate = chosen.clone();
            }
        }
    }
    let mut instances = f.all("Instances");
    instances.extend(split_ids(f.get("InstancesText")));
    let tags = f
        .members("Tags", &["Key", "Value"])
        .into_iter()
        .map(|(_, row)| Tag {
            key: row[0].clone(),
            value: row[1].clone(),
        })
        .collect();
    let launch = Launch {
        load_balancer: NewLoadBalancer {
            name: f.get("LoadBalancerName").to_owned(),
            listeners: specs,
            tags,
            scheme: f.opt("Scheme"),
            ..NewLoadBalancer::default()
        },
        new_certificate,
        security_policy: if tls { f.opt("SecurityPolicy") } else { None },
        health_check: Some(HealthCheckSpec {
            target: f.get("HealthCheck.Target").to_owned(),
            interval_secs: f.number("HealthCheck.Interval", "Interval")?,
            timeout_secs: f.number("HealthCheck.Timeout", "Timeout")?,
            healthy_threshold: f.number("HealthCheck.HealthyThreshold", "HealthyThreshold")?,
            unhealthy_threshold: f
                .number("HealthCheck.UnhealthyThreshold", "UnhealthyThreshold")?,
        }),
        instances,
    };
    let resources = format!(
        "LoadBalancerName={}{}",
        f.get("LoadBalancerName"),
        if f.get("CertificateSource") == "upload" && tls {
            format!(" ServerCertificateName={}", f.get("ServerCertificateName"))
        } else {
            String::new()
        }
    );
    ctx.change(
        "elasticloadbalancing",
        "CreateLoadBalancer",
        &resources,
        |c| c.launch(launch),
    )
    .map(|_| ())
    .map_err(|e| renumber(e, &rows))
}

/// The service layer numbers listeners by position; the form by row (empty rows skipped).
/// A certificate error is shown at the step's certificate choice.
fn renumber(mut e: ControlError, rows: &[(usize, Vec<String>)]) -> ControlError {
    if let Some(field) = e.field.take() {
        let mut out = field.clone();
        if field.ends_with(".SSLCertificateId") {
            out = "SSLCertificateId".into();
        } else if let Some(rest) = field.strip_prefix("Listeners.member.") {
            if let Some((i, leaf)) = rest.split_once('.') {
                let row = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| rows.get(i));
                if let Some((n, _)) = row {
                    out = format!("Listeners.member.{n}.{leaf}");
                }
            }
        }
        e.field = Some(out);
    }
    e
}
