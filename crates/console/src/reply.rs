//! What a page answers, turned into an HTTP response: HTML, a redirect after a change, JSON or
//! text for the live parts, the compiled-in assets; the session cookie when one opens or ends.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use maud::Markup;

use crate::session::{COOKIE, SESSION_LIFETIME};
use crate::Body;

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

pub(crate) struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: String,
    location: Option<String>,
    cookie: Cookie,
    cache: bool,
}

enum Cookie {
    Keep,
    Set(String),
    Clear,
}

impl Reply {
    pub fn page(status: StatusCode, markup: Markup) -> Reply {
        Reply::new(status, "text/html; charset=utf-8", markup.into_string())
    }

    pub fn ok(markup: Markup) -> Reply {
        Reply::page(StatusCode::OK, markup)
    }

    pub fn text(status: StatusCode, text: impl Into<String>) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", text.into())
    }

    pub fn json(value: serde_json::Value) -> Reply {
        Reply::new(StatusCode::OK, "application/json", value.to_string())
    }

    /// 303 See Other: after a change, the browser asks for the page anew.
    pub fn redirect(to: impl Into<String>) -> Reply {
        let mut r = Reply::new(
            StatusCode::SEE_OTHER,
            "text/plain; charset=utf-8",
            String::new(),
        );
        r.location = Some(to.into());
        r
    }

    pub fn open_session(mut self, id: String) -> Reply {
        self.cookie = Cookie::Set(id);
        self
    }

    pub fn clear_session(mut self) -> Reply {
        self.cookie = Cookie::Clear;
        self
    }

    fn new(status: StatusCode, content_type: &'static str, body: String) -> Reply {
        Reply {
            status,
            content_type,
            body,
            location: None,
            cookie: Cookie::Keep,
            cache: false,
        }
    }

    pub fn into_response(self, secure: bool) -> Response<Body> {
        let mut resp = Response::new(Full::new(Bytes::from(self.body)).boxed());
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if !self.cache {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        guard(h);
        if let Some(to) = self.location.and_then(|l| HeaderValue::try_from(l).ok()) {
            h.insert(header::LOCATION, to);
        }
        let secure = if secure { "; Secure" } else { "" };
        let cookie = match self.cookie {
            Cookie::Keep => None,
            Cookie::Set(id) => Some(format!(
                "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                SESSION_LIFETIME.as_secs()
            )),
            Cookie::Clear => Some(format!(
                "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
            )),
        };
        if let Some(v) = cookie.and_then(|c| HeaderValue::try_from(c).ok()) {
            h.insert(header::SET_COOKIE, v);
        }
        resp
    }
}

/// What every answer of the console carries: only its own scripts and styles, no framing by
/// another site, no guessing of content types.
fn guard(h: &mut http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A streamed text answer (the access-log tail), with the same guards.
pub(crate) fn streamed(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    guard(h);
    resp
}

/// The compiled-in stylesheet and script.
pub(crate) fn asset(name: &str) -> Reply {
    let (content_type, body) = match name {
        "console.css" => ("text/css; charset=utf-8", CSS),
        "console.js" => ("text/javascript; charset=utf-8", JS),
        _ => return Reply::text(StatusCode::NOT_FOUND, "no such asset"),
    };
    let mut r = Reply::new(StatusCode::OK, content_type, body.to_owned());
    r.cache = true;
    r
}
