//! Self-tests of the browser harness: a real headless Chromium against a tiny form page served
//! on loopback (plain HTTP and TLS from the test CA).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fulcrum_testkit::{bind_listener, loopback_any, server_tls_config, Browser, TestCa};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

const FORM: &str = r#"<!doctype html>
<html><head><title>Form</title></head><body>
<h1>Test form</h1>
<form method="post" action="/submit">
  <input type="hidden" name="csrf" value="token123">
  <p><label for="name">Name</label> <input id="name" name="name"></p>
  <p><label>Note <textarea name="note"></textarea></label></p>
  <button type="submit">Send</button>
</form>
</body></html>"#;

/// A request the page server received.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    cookie: Option<String>,
    body: String,
}

/// The form page on 127.0.0.1:0: `GET /` is the form, `POST /submit` takes it (with the
/// token; 403 without) and sets a session cookie.
struct PageServer {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    seen: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> PageServer {
        let listener = bind_listener(loopback_any()).await.expect("bind the page");
        let addr = listener.local_addr().expect("local_addr");
        let requests = Arc::new(AtomicU64::new(0));
        let (tx, seen) = mpsc::unbounded_channel();
        let secure = tls.is_some();
        let acceptor = tls.map(TlsAcceptor::from);
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, counter, acceptor) = (tx.clone(), counter.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        answer(req, tx.clone(), secure)
                    });
                    let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => http.serve_connection(TokioIo::new(tls), service).await,
                            Err(_) => return,
                        },
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                    };
                });
            }
        });
        PageServer {
            addr,
            requests,
            seen,
            task,
        }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    /// The next request to `path`, waiting up to 10 s.
    async fn next(&mut self, path: &str) -> Seen {
        let wait = async {
            loop {
                let seen = self.seen.recv().await.expect("the page server is running");
                if seen.path == path {
                    return seen;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("the page server got no request to {path}"))
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    tx: mpsc::UnboundedSender<Seen>,
    secure: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let cookie = req
        .headers()
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req.into_body().collect().await.map_or_else(
        |_| String::new(),
        |b| String::from_utf8_lossy(&b.to_bytes()).into_owned(),
    );
    let _ = tx.send(Seen {
        method: method.clone(),
        path: path.clone(),
        cookie,
        body: body.clone(),
    });
    let html = |status: u16| {
        Response::builder()
            .status(status)
            .header("content-type", "text/html; charset=utf-8")
    };
    let response = match (method.as_str(), path.as_str()) {
        ("GET", "/") => html(200).body(Full::from(FORM)),
        ("POST", "/submit") if field(&body, "csrf").as_deref() == Some("token123") => {
            let name = field(&body, "name").unwrap_or_default();
            let flags = if secure { "; Secure" } else { "" };
            html(200)
                .header(
                    "set-cookie",
                    format!("session=s1; Path=/; HttpOnly; SameSite=Strict{flags}"),
                )
                .header("set-cookie", "theme=dark; Path=/")
                .body(Full::from(format!(
                    "<!doctype html><title>Done</title><p id=done>Thanks, {}</p>",
                    name.replace('<', "&lt;")
                )))
        }
        ("POST", "/submit") => html(403).body(Full::from(
            "<!doctype html><title>Refused</title><p id=refused>missing CSRF token</p>",
        )),
        _ => html(404).body(Full::from("not found")),
    };
    Ok(response.expect("a response"))
}

/// One field of an `application/x-www-form-urlencoded` body, decoded.
fn field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        (n == name).then(|| form_decode(v))
    })
}

fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn fills_and_submits_a_form_and_forges_one() {
    if Browser::skip() {
        return;
    }
    let mut page = PageServer::start(None).await;
    let browser = Browser::start().await;

    browser.goto(&page.url("http", "/")).await;
    assert_eq!(browser.title().await, "Form");
    assert_eq!(browser.text("h1").await, "Test form");
    browser.fill_label("Name", "Ada Lovelace").await;
    browser.fill_label("Note", "a & b <c>").await;
    browser.fill_label("Note", "cleared first").await;
    let shot = browser.screenshot("testkit-form-filled").await;
    let png = std::fs::read(&shot).expect("the screenshot file");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
        "{} is not a PNG",
        shot.display()
    );
    browser.click_button("Send").await;

    let posted = page.next("/submit").await;
    assert_eq!(posted.method, "POST");
    assert_eq!(
        posted.body,
        "csrf=token123&name=Ada+Lovelace&note=cleared+first"
    );
    assert_eq!(
        browser.wait_for_text("#done", "Thanks").await,
        "Thanks, Ada Lovelace"
    );
    assert!(browser.wait_for_url("/submit").await.ends_with("/submit"));
    browser.screenshot("testkit-form-submitted").await;

    let session = browser.cookie("session").await.expect("the session cookie");
    assert!(session.http_only && !session.secure, "{session:?}");
    assert_eq!(session.same_site.as_deref(), Some("Strict"));
    assert_eq!((session.value.as_str(), session.expires), ("s1", None));
    assert_eq!(browser.cookies().await.len(), 2);
    // Scripts see the plain cookie, not the HttpOnly one.
    assert_eq!(browser.document_cookie().await, "theme=dark");

    // A POST forged from the page with fetch(): the browser sends the cookies, not the token.
    let reply = browser
        .post_form(&page.url("http", "/submit"), &[("name", "Mallory & co")])
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.kind, "basic");
    assert!(reply.body.contains("missing CSRF token"), "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let forged = page.next("/submit").await;
    assert_eq!(forged.body, "name=Mallory+%26+co");
    assert_eq!(forged.cookie.as_deref(), Some("session=s1; theme=dark"));

    // The same as a form the page builds and submits: the browser navigates to the answer.
    browser
        .submit_form_to("/submit", &[("name", "Eve"), ("x", "1")])
        .await;
    assert_eq!(page.next("/submit").await.body, "name=Eve&x=1");
    assert_eq!(browser.text("#refused").await, "missing CSRF token");
    assert!(browser.try_find("#done").await.is_none());
}

#[tokio::test]
async fn trusts_only_the_ca_it_was_given() {
    if Browser::skip() {
        return;
    }
    let ca = TestCa::new("fulcrum browser test CA");
    let (cert, key) = ca.issue(&["127.0.0.1", "localhost"]);
    let alpn: &[&[u8]] = &[b"h2", b"http/1.1"];
    let mut trusted = PageServer::start(Some(server_tls_config(&cert, &key, alpn))).await;
    let other = TestCa::new("some other CA");
    let (cert, key) = other.issue(&["127.0.0.1", "localhost"]);
    let untrusted = PageServer::start(Some(server_tls_config(&cert, &key, alpn))).await;

    let browser = Browser::start_trusting(&ca.cert_pem()).await;
    browser.goto(&untrusted.url("https", "/")).await;
    assert_ne!(browser.title().await, "Form");
    assert_eq!(untrusted.requests.load(Ordering::Relaxed), 0);

    browser.goto(&trusted.url("https", "/")).await;
    assert_eq!(browser.title().await, "Form");
    browser.fill_label("Name", "Grace").await;
    browser.click_button("Send").await;
    assert_eq!(
        trusted.next("/submit").await.body,
        "csrf=token123&name=Grace&note="
    );
    browser.wait_for_text("#done", "Grace").await;
    let session = browser.cookie("session").await.expect("the session cookie");
    assert!(session.secure && session.http_only, "{session:?}");
}

#[tokio::test]
async fn accepts_any_certificate_unless_told_otherwise() {
    if Browser::skip() {
        return;
    }
    let (cert, key) = TestCa::new("unknown CA").issue(&["127.0.0.1"]);
    let page = PageServer::start(Some(server_tls_config(&cert, &key, &[b"h2", b"http/1.1"]))).await;
    let browser = Browser::start().await;
    browser.goto(&page.url("https", "/")).await;
    assert_eq!(browser.title().await, "Form");
    assert!(page.requests.load(Ordering::Relaxed) > 0);
}
