//! The page shell (header, navigation, sign-out) and the pieces every form is made of: labelled
//! fields that show, beside themselves, the error the service layer blamed on them.

use fulcrum_control::ControlError;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::session::Session;

/// Which part of the console a page belongs to (its navigation entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    LoadBalancers,
    Certificates,
    Instances,
}

/// An error shown on a page, with the form it answers (a page may hold several).
#[derive(Debug, Clone)]
pub struct Failure {
    pub form: String,
    pub error: ControlError,
}

impl Failure {
    pub fn new(form: impl Into<String>, error: ControlError) -> Failure {
        Failure {
            form: form.into(),
            error,
        }
    }
}

/// The error of `form`, if the page shows one.
pub fn error_of<'a>(failure: Option<&'a Failure>, form: &str) -> Option<&'a ControlError> {
    failure.filter(|f| f.form == form).map(|f| &f.error)
}

/// A whole page.
pub fn page(
    title: &str,
    session: Option<&Session>,
    section: Option<Section>,
    body: Markup,
) -> Markup {
    let nav = |s: Section, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(section == Some(s)).then_some("page")] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fulcrum" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "fulcrum" }
                    @if let Some(s) = session {
                        nav aria-label="Sections" {
                            ul {
                                (nav(Section::LoadBalancers, "/console/load-balancers", "Load balancers"))
                                (nav(Section::Certificates, "/console/certificates", "Certificates"))
                                (nav(Section::Instances, "/console/instances", "Instances"))
                            }
                        }
                        div.who {
                            span { (s.access_key_id) " (" (s.scope.as_str()) ")" }
                            form method="post" action="/console/sign-out" {
                                (csrf(s))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// The id of a field's input, from its name (`HealthCheck.Target` -> `HealthCheck-Target`).
pub fn id_of(name: &str) -> String {
    name.replace('.', "-")
}

/// Whether an error is blamed on `name`.
fn blames(err: Option<&ControlError>, name: &str) -> bool {
    err.and_then(|e| e.field.as_deref()) == Some(name)
}

/// The error message beside a field, when the error is its.
pub fn field_error(err: Option<&ControlError>, name: &str) -> Markup {
    error_beside(err, name, &id_of(name))
}

fn error_beside(err: Option<&ControlError>, name: &str, id: &str) -> Markup {
    html! {
        @if let Some(e) = err.filter(|_| blames(err, name)) {
            p.field-error id={ (id) "-error" } role="alert" { (e.message) " (" (e.code) ")" }
        }
    }
}

/// A form's error that no field of it shows.
pub fn form_error<S: AsRef<str>>(err: Option<&ControlError>, fields: &[S]) -> Markup {
    let shown_by_field = err
        .and_then(|e| e.field.as_deref())
        .is_some_and(|f| fields.iter().any(|k| k.as_ref() == f));
    html! {
        @if let Some(e) = err.filter(|_| !shown_by_field) {
            div.form-error role="alert" { strong { (e.code) } ": " (e.message) }
        }
    }
}

/// A labelled input.
pub fn input(
    label: &str,
    name: &str,
    kind: &str,
    value: &str,
    err: Option<&ControlError>,
    hint: Option<&str>,
) -> Markup {
    input_as(&id_of(name), label, name, kind, value, err, hint)
}

/// A labelled input with its own id (when a page repeats a field, one form per row).
pub fn input_as(
    id: &str,
    label: &str,
    name: &str,
    kind: &str,
    value: &str,
    err: Option<&ControlError>,
    hint: Option<&str>,
) -> Markup {
    let invalid = blames(err, name);
    let described = match (invalid, hint) {
        (true, _) => Some(format!("{id}-error")),
        (false, Some(_)) => Some(format!("{id}-hint")),
        _ => None,
    };
    field(
        id,
        label,
        name,
        err,
        html! {
            input id=(id) name=(name) type=(kind) value=(value)
                aria-invalid=[invalid.then_some("true")] aria-describedby=[described];
            @if let Some(h) = hint { p.hint id={ (id) "-hint" } { (h) } }
        },
    )
}

/// What every field is: its label, its control, and the error the service layer blamed on it.
fn field(id: &str, label: &str, name: &str, err: Option<&ControlError>, control: Markup) -> Markup {
    html! {
        div.field.invalid[blames(err, name)] {
            label for=(id) { (label) }
            (control)
            (error_beside(err, name, id))
        }
    }
}

/// A labelled text area (PEM blocks).
pub fn textarea(
    label: &str,
    name: &str,
    value: &str,
    err: Option<&ControlError>,
    hint: &str,
) -> Markup {
    let id = id_of(name);
    let invalid = blames(err, name);
    field(
        &id,
        label,
        name,
        err,
        html! {
            textarea id=(id) name=(name) rows="6" spellcheck="false"
                aria-invalid=[invalid.then_some("true")]
                aria-describedby={ (id) (if invalid { "-error" } else { "-hint" }) } { (value) }
            p.hint id={ (id) "-hint" } {
                (hint) " "
                label.file { "or read a file: " input type="file" data-fill=(id) accept=".pem,.crt,.key,.txt"; }
            }
        },
    )
}

/// A labelled select; `options` are (value, text).
pub fn select(
    label: &str,
    name: &str,
    options: &[(String, String)],
    chosen: &str,
    err: Option<&ControlError>,
) -> Markup {
    select_as(&id_of(name), label, name, options, chosen, err)
}

/// A labelled select with its own id (one form per row).
pub fn select_as(
    id: &str,
    label: &str,
    name: &str,
    options: &[(String, String)],
    chosen: &str,
    err: Option<&ControlError>,
) -> Markup {
    let invalid = blames(err, name);
    field(
        id,
        label,
        name,
        err,
        html! {
            select id=(id) name=(name) aria-invalid=[invalid.then_some("true")]
                aria-describedby=[invalid.then(|| format!("{id}-error"))] {
                @for (value, text) in options {
                    option value=(value) selected[value == chosen] { (text) }
                }
            }
        },
    )
}

/// The four listener protocols, for selects.
pub fn protocols() -> Vec<(String, String)> {
    ["HTTP", "HTTPS", "TCP", "SSL"]
        .iter()
        .map(|p| (p.to_string(), p.to_string()))
        .collect()
}

/// A date as operators read it: `2026-12-08 14:03 UTC`.
pub fn date(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A short notice after a change (`?done=...`).
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(t) = text { div.notice role="status" { (t) } }
    }
}

/// Markup for text known to be safe (inline SVG the console drew itself).
pub fn trusted(s: String) -> Markup {
    PreEscaped(s)
}
