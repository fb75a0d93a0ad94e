//! Request and response headers on their way through the balancer: framing checks that keep
//! requests from being smuggled, hop-by-hop fields removed (RFC 9110 §7.6.1), and the
//! `X-Forwarded-*` fields the application relies on.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// A request the balancer refuses to forward, with the status it answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) status: u16,
    pub(crate) why: &'static str,
}

fn refuse(status: u16, why: &'static str) -> Refused {
    Refused { status, why }
}

/// Checks what the HTTP parser accepts but an instance could read differently.
pub(crate) fn check_request<B>(req: &Request<B>) -> Result<(), Refused> {
    let h = req.headers();
    let te = h.get_all(header::TRANSFER_ENCODING).iter().count();
    if te > 0 {
        if req.version() == Version::HTTP_10 {
            return Err(refuse(400, "Transfer-Encoding is not allowed in HTTP/1.0"));
        }
        // hyper already drops Content-Length beside chunked framing and closes the connection
        // after the request; this stays so that a change there cannot open a smuggling hole.
        if h.contains_key(header::CONTENT_LENGTH) {
            return Err(refuse(400, "both Transfer-Encoding and Content-Length"));
        }
        let exactly_chunked = te == 1
            && h.get(header::TRANSFER_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
        if !exactly_chunked {
            return Err(refuse(501, "only Transfer-Encoding: chunked is supported"));
        }
    }
    let mut lengths = h.get_all(header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        let digits = |v: &HeaderValue| !v.is_empty() && v.as_bytes().iter().all(u8::is_ascii_digit);
        if !digits(first) || lengths.any(|v| v != first || !digits(v)) {
            return Err(refuse(400, "invalid or conflicting Content-Length"));
        }
    }
    let hosts = h.get_all(header::HOST).iter().count();
    if hosts > 1 {
        return Err(refuse(400, "more than one Host header"));
    }
    if req.version() == Version::HTTP_11 && hosts == 0 && req.uri().authority().is_none() {
        return Err(refuse(400, "HTTP/1.1 request without Host"));
    }
    if req.method() == Method::CONNECT {
        return Err(refuse(405, "CONNECT is not supported"));
    }
    Ok(())
}

/// Whether the request asks to switch protocols on this connection (WebSocket and the like).
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && connection_has(req.headers(), "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The fields RFC 9110 names as hop-by-hop, `Connection` first (`Upgrade` aside: it is kept
/// when asked).
static HOP_BY_HOP: [&HeaderName; 6] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TE,
    &header::TRAILER,
    &header::TRANSFER_ENCODING,
];

/// Removes the fields that concern only one hop: those RFC 9110 names and those the message's
/// own `Connection` field lists. `Upgrade` is kept (with `Connection: upgrade`) when asked.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names finds which are present, so that only those cost a hashed
    // removal: most messages carry none, or only `Connection: keep-alive`.
    let mut present = [false; HOP_BY_HOP.len()];
    let mut upgrade = false;
    for name in headers.keys() {
        match HOP_BY_HOP.iter().position(|h| *h == name) {
            Some(i) => present[i] = true,
            None => upgrade |= *name == header::UPGRADE,
        }
    }
    // `Connection` is first in the list.
    if present[0] {
        remove_listed(headers, keep_upgrade);
    }
    for (name, present) in HOP_BY_HOP.iter().zip(present) {
        if present {
            headers.remove(*name);
        }
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else if upgrade {
        headers.remove(header::UPGRADE);
    }
}

/// Removes the fields the `Connection` field lists.
fn remove_listed(headers: &mut HeaderMap, keep_upgrade: bool) {
    // The values are cheap clones (shared bytes), so the map can be changed while they are read.
    let listed: Vec<HeaderValue> = headers
        .get_all(header::CONNECTION)
        .iter()
        .cloned()
        .collect();
    for value in &listed {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            // `close` and `keep-alive` are connection options, not fields worth a lookup.
            if token.eq_ignore_ascii_case("close") || token.eq_ignore_ascii_case("keep-alive") {
                continue;
            }
            let Ok(name) = HeaderName::from_bytes(token.as_bytes()) else {
                continue;
            };
            if !(keep_upgrade && name == header::UPGRADE) {
                headers.remove(name);
            }
        }
    }
}

/// Rewrites a client's request into the one the instance receives: origin-form target, a Host
/// field, no hop-by-hop fields, and the balancer's `X-Forwarded-*` fields. The client's own
/// `X-Forwarded-For` is kept and the client's address appended, as ELB does; `-Proto` and
/// `-Port` are the balancer's word alone.
pub(crate) fn rewrite_request<B>(
    req: &mut Request<B>,
    client: &HeaderValue,
    proto: &'static str,
    port_value: &HeaderValue,
    upgrade: bool,
) {
    // Only absolute-form targets (and HTTP/2's, which carry the authority) need rebuilding;
    // the usual origin-form target goes through untouched.
    if let Some(authority) = req.uri().authority().cloned() {
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        // An origin-form target parses without failure: it was part of a valid URI.
        *req.uri_mut() = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
        // The target's authority names the host (RFC 9112 §3.2.2).
        if let Ok(v) = HeaderValue::try_from(authority.as_str()) {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    *req.version_mut() = Version::HTTP_11;

    let headers = req.headers_mut();
    strip_hop_by_hop(headers, upgrade);

    let xff = match headers.get(&X_FORWARDED_FOR) {
        None => client.clone(),
        Some(_) => {
            let mut joined = Vec::with_capacity(64);
            for v in headers.get_all(&X_FORWARDED_FOR) {
                joined.extend_from_slice(v.as_bytes());
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(client.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or_else(|_| client.clone())
        }
    };
    headers.insert(&X_FORWARDED_FOR, xff);
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    headers.insert(&X_FORWARDED_PORT, port_value.clone());
}

/// The client's address as the value `X-Forwarded-For` appends.
pub(crate) fn client_value(client: IpAddr) -> HeaderValue {
    HeaderValue::try_from(client.to_string()).expect("an IP address is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(lines: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri("/x").version(Version::HTTP_11);
        for (k, v) in lines {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn framing_checks() {
        assert!(check_request(&req(&[("host", "a")])).is_ok());
        assert_eq!(check_request(&req(&[])).unwrap_err().status, 400);
        assert!(check_request(&req(&[("host", "a"), ("host", "b")])).is_err());
        assert!(check_request(&req(&[("host", "a"), ("transfer-encoding", "chunked")])).is_ok());
        for bad in [
            vec![("transfer-encoding", "chunked"), ("content-length", "3")],
            vec![("transfer-encoding", "gzip, chunked")],
            vec![
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            vec![("transfer-encoding", " chunked")],
            vec![("content-length", "1"), ("content-length", "2")],
            vec![("content-length", "+1")],
            vec![("content-length", "1, 1")],
        ] {
            let mut lines = vec![("host", "a")];
            lines.extend(bad.iter().copied());
            assert!(check_request(&req(&lines)).is_err(), "{bad:?}");
        }
        let mut http10 = req(&[("transfer-encoding", "chunked")]);
        *http10.version_mut() = Version::HTTP_10;
        assert!(check_request(&http10).is_err());
    }

    #[test]
    fn forwarded_headers_append_and_overwrite() {
        let mut r = req(&[
            ("host", "example.com"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "1"),
            ("connection", "close, x-secret"),
            ("x-secret", "s"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
        ]);
        rewrite_request(
            &mut r,
            &client_value("9.9.9.9".parse().unwrap()),
            "http",
            &HeaderValue::from_static("80"),
            false,
        );
        let h = r.headers();
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 9.9.9.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-port"], "80");
        for gone in ["connection", "x-secret", "keep-alive", "te"] {
            assert!(!h.contains_key(gone), "{gone}");
        }
        assert_eq!(h["host"], "example.com");
    }

    #[test]
    fn hop_by_hop_fields_of_a_response_are_removed() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, X-Hop"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["content-type"], "text/plain");

        let mut plain = HeaderMap::new();
        plain.insert("server", HeaderValue::from_static("x"));
        strip_hop_by_hop(&mut plain, false);
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn absolute_targets_become_origin_form() {
        let mut r = Request::builder()
            .uri("http://other.example:8080/p?q=1")
            .header("host", "ignored")
            .body(())
            .unwrap();
        rewrite_request(
            &mut r,
            &client_value("::1".parse().unwrap()),
            "https",
            &HeaderValue::from_static("443"),
            false,
        );
        assert_eq!(r.uri(), "/p?q=1");
        assert_eq!(r.headers()["host"], "other.example:8080");
        assert_eq!(r.headers()["x-forwarded-for"], "::1");
    }

    #[test]
    fn upgrades_keep_their_headers() {
        let mut r = req(&[
            ("host", "a"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert!(is_upgrade(&r));
        rewrite_request(
            &mut r,
            &client_value("127.0.0.1".parse().unwrap()),
            "http",
            &HeaderValue::from_static("80"),
            true,
        );
        assert_eq!(r.headers()["upgrade"], "websocket");
        assert_eq!(r.headers()["connection"], "upgrade");
    }
}
