//! Sign-in with an access key id and its secret (the admin key is in `DIR/credentials`), rate
//! limited per client address; a session cookie on success.

use http::{Method, StatusCode};
use maud::html;

use crate::layout::{input, page};
use crate::reply::Reply;
use crate::{Console, Req};
use fulcrum_control::ControlError;

pub(crate) fn respond(console: &Console, req: &Req) -> Reply {
    if req.method != Method::POST {
        return form(StatusCode::OK, "", None);
    }
    let key_id = req.form.get("AccessKeyId");
    if let Err(wait) = console.sessions.attempt(req.client) {
        return form(
            StatusCode::TOO_MANY_REQUESTS,
            key_id,
            Some(ControlError::new(
                "Throttling",
                format!("Too many failed sign-ins from this address; try again in {wait} s."),
            )),
        );
    }
    // What was typed as the key id is logged only if it looks like one (not a secret pasted
    // into the wrong box).
    let shown_id = if key_id.len() == 20 && key_id.starts_with("AKIA") {
        key_id
    } else {
        "(not an access key id)"
    };
    match console
        .control
        .authenticate(key_id, req.form.raw("SecretAccessKey"))
    {
        Some(caller) => {
            console.sessions.succeeded(req.client);
            tracing::info!(access_key = shown_id, client = %req.client, "console sign-in");
            let id = console.sessions.open(caller.access_key_id, caller.scope);
            Reply::redirect("/console/load-balancers").open_session(id)
        }
        None => {
            tracing::warn!(access_key = shown_id, client = %req.client, "console sign-in refused");
            form(
                StatusCode::UNAUTHORIZED,
                key_id,
                Some(
                    ControlError::new(
                        "InvalidClientTokenId",
                        "The access key id or its secret is not right.",
                    )
                    .at("SecretAccessKey"),
                ),
            )
        }
    }
}

fn form(status: StatusCode, key_id: &str, err: Option<ControlError>) -> Reply {
    let err = err.as_ref();
    Reply::page(
        status,
        page(
            "Sign in",
            None,
            None,
            html! {
                section.signin {
                    h1 { "Sign in" }
                    p { "With an access key: the admin key is in " code { "DIR/credentials" } " on the node; a read-only key opens a read-only console." }
                    @if let Some(e) = err.filter(|e| e.field.is_none()) {
                        div.form-error role="alert" { (e.message) }
                    }
                    form method="post" action="/console/sign-in" {
                        (input("Access key id", "AccessKeyId", "text", key_id, None, None))
                        (input("Secret access key", "SecretAccessKey", "password", "", err, None))
                        button.primary type="submit" { "Sign in" }
                    }
                }
            },
        ),
    )
}
