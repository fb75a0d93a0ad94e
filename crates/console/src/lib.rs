//! fulcrum's web console, at `/console/` on the API address (and over the API's TLS): sign-in
//! with an access key, load balancers (list, detail, ELB's create wizard, every edit), server
//! certificates, the instance inventory with live health, and monitoring (charts from the
//! one-minute series, a live tail of the access log).
//!
//! Pages are HTML rendered on the server (maud, compiled in) with a little script for live
//! parts; no CDN, no Node toolchain. Every read and change goes through the service layer
//! (`fulcrum_control`), as the AWS API does: the same rules, the same error codes and words,
//! shown beside the field they blame. A read-only key signs in to a read-only console.

#![forbid(unsafe_code)]

mod form;
mod layout;
mod pages;
mod reply;
mod session;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use fulcrum_control::access::{authorize, KeyScope};
use fulcrum_control::{Control, ControlError};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Limited};

pub use form::Form;
use reply::Reply;
use session::{Session, Sessions};

/// An answer's body, as the API server sends it.
pub type Body = BoxBody<Bytes, Infallible>;

/// Forms larger than this are refused (a certificate with its chain fits many times).
const MAX_FORM: usize = 1 << 20;

/// The console of one node.
pub struct Console {
    control: Arc<Control>,
    sessions: Sessions,
}

/// One request, read whole.
pub(crate) struct Req {
    pub method: Method,
    /// The path below `/console`, without a trailing slash (`/load-balancers/web`).
    pub path: String,
    pub query: Form,
    pub form: Form,
    pub session_id: Option<String>,
    pub client: IpAddr,
}

/// What a page handler works with: the console, the signed-in session, the request.
pub(crate) struct Ctx<'a> {
    pub control: &'a Control,
    pub session: &'a Session,
    pub req: &'a Req,
}

impl Ctx<'_> {
    /// Runs a change as the signed-in key: refused for a read-only key (as the API refuses
    /// it), kept out of a node handing over, and audited.
    pub fn change<T>(
        &self,
        service: &str,
        action: &str,
        resources: &str,
        run: impl FnOnce(&Control) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let control = self.control;
        let _running = control.pause.enter();
        let outcome = if control.pause.is_paused() {
            Err(ControlError::new(
                "ServiceUnavailable",
                "this node is handing over to a new process; retry",
            ))
        } else {
            authorize(self.session.scope, &control.account, service, action)
                .and_then(|()| run(control))
        };
        let code = match &outcome {
            Ok(_) => "ok",
            Err(e) => e.code,
        };
        fulcrum_control::access::audit(
            &self.session.access_key_id,
            "console",
            action,
            resources,
            code,
        );
        outcome
    }

    pub fn can_change(&self) -> bool {
        self.session.scope == KeyScope::Admin
    }
}

impl Console {
    pub fn new(control: Arc<Control>) -> Console {
        Console {
            control,
            sessions: Sessions::default(),
        }
    }

    /// Answers one request under `/console`.
    pub async fn handle<B>(
        self: &Arc<Self>,
        req: Request<B>,
        client: SocketAddr,
        secure: bool,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let Ok(body) = read_wiped(body, MAX_FORM).await else {
            return Reply::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the form is larger than 1 MiB",
            )
            .into_response(secure);
        };
        let path = parts
            .uri
            .path()
            .strip_prefix("/console")
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        let req = Req {
            method: parts.method.clone(),
            path,
            query: Form::parse(parts.uri.query().unwrap_or("").as_bytes()),
            form: Form::parse(&body[..]),
            session_id: session_cookie(&parts.headers),
            client: client.ip(),
        };
        if req.method == Method::GET {
            if let Some(name) = req
                .path
                .strip_prefix("/load-balancers/")
                .and_then(|rest| rest.strip_suffix("/log"))
            {
                // Streamed for as long as the page follows it: not a page of the blocking pool.
                let name = name.to_owned();
                let this = Arc::clone(self);
                let session =
                    tokio::task::spawn_blocking(move || this.signed_in(&req).map(|_| req))
                        .await
                        .ok()
                        .flatten();
                return match session {
                    Some(req) => pages::monitoring::stream_log(self, &name, &req),
                    None => Reply::redirect("/console/sign-in").into_response(secure),
                };
            }
        }
        if req.method == Method::POST && !same_site(&parts.headers) {
            return Reply::text(
                StatusCode::FORBIDDEN,
                "this form was sent from another site: refused",
            )
            .into_response(secure);
        }
        let this = Arc::clone(self);
        // Pages read the store and change it, which blocks: they run on the blocking pool.
        match tokio::task::spawn_blocking(move || this.respond(&req)).await {
            Ok(reply) => reply.into_response(secure),
            Err(e) => {
                tracing::error!(error = %e, "console page panicked");
                Reply::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                    .into_response(secure)
            }
        }
    }

    fn respond(&self, req: &Req) -> Reply {
        let path = req.path.as_str();
        if let Some(asset) = path.strip_prefix("/assets/") {
            return reply::asset(asset);
        }
        if path == "/sign-in" {
            return pages::sign_in::respond(self, req);
        }
        let Some(session) = self.signed_in(req) else {
            return Reply::redirect("/console/sign-in");
        };
        if req.method == Method::POST
            && !fulcrum_control::access::same_secret(
                req.form.get("csrf").as_bytes(),
                session.csrf.as_bytes(),
            )
        {
            tracing::warn!(client = %req.client, path, "console form without its CSRF token refused");
            return Reply::page(
                StatusCode::FORBIDDEN,
                layout::page(
                    "Refused",
                    Some(&session),
                    None,
                    maud::html! {
                        h1 { "Refused" }
                        p { "This form was not sent by a page of this console (its CSRF token is missing or wrong). Nothing was changed." }
                    },
                ),
            );
        }
        let ctx = Ctx {
            control: &self.control,
            session: &session,
            req,
        };
        if path == "/sign-out" && req.method == Method::POST {
            if let Some(id) = &req.session_id {
                self.sessions.close(id);
            }
            return Reply::redirect("/console/sign-in").clear_session();
        }
        pages::route(&ctx)
    }
}

impl Console {
    /// The session the request's cookie names, if it is open and its key still signs in (a
    /// key revoked since sign-in ends its sessions).
    fn signed_in(&self, req: &Req) -> Option<Session> {
        let session = self.sessions.get(req.session_id.as_deref()?)?;
        if self.control.key_scope(&session.access_key_id).is_none() {
            self.sessions.close_key(&session.access_key_id);
            return None;
        }
        Some(session)
    }

    /// Whether the session `id` is still open (a streamed page checks it as it goes).
    pub(crate) fn still_open(&self, id: &str) -> bool {
        self.sessions.get(id).is_some()
    }
}

/// A form posted from a page of another site (the browser says so in `Sec-Fetch-Site`, or an
/// `Origin` that is not this host) is refused before anything, sign-in included.
fn same_site(headers: &http::HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Reads a request body of at most `max` bytes into one buffer, sized once (no reallocation
/// leaves a copy) and wiped when dropped: a body may carry a private key (a certificate upload,
/// here or through the API's `UploadServerCertificate`). The chunks hyper read it into are not.
pub async fn read_wiped<B>(
    body: B,
    max: usize,
) -> Result<zeroize::Zeroizing<Vec<u8>>, Box<dyn std::error::Error + Send + Sync>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let chunks = Limited::new(body, max).collect().await?.aggregate();
    let mut wiped = zeroize::Zeroizing::new(Vec::with_capacity(bytes::Buf::remaining(&chunks)));
    bytes::BufMut::put(&mut *wiped, chunks);
    Ok(wiped)
}

fn session_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == session::COOKIE)
        .map(|(_, v)| v.to_owned())
}
