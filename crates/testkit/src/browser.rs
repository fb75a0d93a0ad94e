//! A real headless Chromium (Debian's `chromium`) driven through WebDriver (Debian's
//! `chromium-driver`), for the web console's browser tests: `chromedriver` on a loopback port
//! picked free, one session, a fresh profile and home directory in a temporary directory; the
//! session closed and `chromedriver` killed, by its process id, when the [`Browser`] is dropped.
//!
//! Every helper panics with what it was doing (tests want a failure, not a `Result`), every
//! WebDriver command is bounded in time, and waits poll a condition up to [`BROWSER_WAIT`]
//! (no sleeps). A wait that times out, and a test that panics while it holds a `Browser`, leave
//! a screenshot under `target/console-screenshots/`.
//!
//! TLS: [`Browser::start`] accepts any certificate (WebDriver's `acceptInsecureCerts`);
//! [`Browser::start_trusting`] accepts only certificates that chain to the given CA, which it
//! adds to an NSS database in the browser's own home directory (Chromium on Linux trusts roots
//! found there; `certutil` is Debian's `libnss3-tools`). Chromium's
//! `--ignore-certificate-errors-spki-list` would not do: it matches only the certificates the
//! server sends, and fulcrum's API sends its leaf without the CA.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::{Element, ElementRef};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// How long the waits of [`Browser`] poll their condition before they fail the test.
pub const BROWSER_WAIT: Duration = Duration::from_secs(10);

/// Where `chromedriver` is: `CHROMEDRIVER_BIN`, else Debian's.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Set to 1 to skip browser tests on a machine without `chromedriver` (CI installs it).
const SKIP_VAR: &str = "FULCRUM_SKIP_BROWSER";
/// How long `chromedriver` gets to say it is ready.
const START_LIMIT: Duration = Duration::from_secs(30);
/// Upper bound of one WebDriver command (above the page-load timeout the session is given).
const COMMAND_LIMIT: Duration = Duration::from_secs(45);
const PAGE_LOAD_LIMIT: Duration = Duration::from_secs(30);
const SCRIPT_LIMIT: Duration = Duration::from_secs(15);
/// The key of an element in WebDriver's JSON (W3C).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Chromium's flags: headless, nothing that talks to Google or to the network behind the test's
/// back, shared memory in /tmp (containers have a small /dev/shm), a fixed window for screenshots.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// One headless Chromium and the `chromedriver` that drives it.
pub struct Browser {
    client: Client,
    session: String,
    driver: Child,
    driver_addr: SocketAddr,
    /// Chromium's process id, as `chromedriver` reported it.
    chromium_pid: Option<u64>,
    /// The profile (`profile/`), the home directory (`home/`, with the NSS database) and
    /// `chromedriver.log`.
    dir: tempfile::TempDir,
}

/// A cookie as the browser holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserCookie {
    pub name: String,
    pub value: String,
    pub domain: Option<String>,
    pub path: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    /// `Strict`, `Lax` or `None` as the browser reports it.
    pub same_site: Option<String>,
    /// Unix time; `None` for a session cookie.
    pub expires: Option<i64>,
}

/// The answer to a `fetch()` run in the page ([`Browser::fetch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReply {
    /// 0 for a redirect: redirects are not followed, and the page may not see them
    /// (`kind` is then `opaqueredirect`).
    pub status: u16,
    /// `basic`, `cors`, `opaqueredirect`, ... (the Fetch standard's response type).
    pub kind: String,
    /// Response headers the page may read, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl FetchReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Browser {
    /// True, after saying why, when browser tests should be skipped: `chromedriver` is missing
    /// and `FULCRUM_SKIP_BROWSER=1` is set. Without that variable a missing `chromedriver` is
    /// a failure ([`Browser::start`] panics), so that CI cannot skip these tests by accident.
    pub fn skip() -> bool {
        if chromedriver_bin().is_file() {
            return false;
        }
        if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
            eprintln!(
                "SKIPPED: {} is missing and {SKIP_VAR}=1 (scripts/test installs chromium and \
                 chromium-driver)",
                chromedriver_bin().display()
            );
            return true;
        }
        false
    }

    /// Starts a browser that accepts any TLS certificate (the console's tests reach the API's
    /// TLS with a test CA).
    pub async fn start() -> Browser {
        Browser::launch(None).await
    }

    /// Starts a browser that accepts only TLS certificates that chain to `ca_pem` (or to the
    /// public roots Chromium knows).
    pub async fn start_trusting(ca_pem: &str) -> Browser {
        Browser::launch(Some(ca_pem)).await
    }

    async fn launch(trust: Option<&str>) -> Browser {
        let dir = tempfile::tempdir().expect("a temporary directory for the browser");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("the browser's home directory");
        if let Some(ca_pem) = trust {
            trust_ca(&home, ca_pem);
        }
        let driver_addr = free_port();
        let log = dir.path().join("chromedriver.log");
        let out = std::fs::File::create(dir.path().join("chromedriver.out"))
            .expect("chromedriver's output file");
        let driver = Command::new(chromedriver_bin())
            .arg(format!("--port={}", driver_addr.port()))
            .arg(format!("--log-path={}", log.display()))
            // Chromium's home: its NSS database, caches and config stay in the temporary
            // directory, not in the home of whoever runs the tests.
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("chromedriver's output file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); install Debian's chromium and chromium-driver \
                     (scripts/test does), or set {SKIP_VAR}=1 to skip browser tests",
                    chromedriver_bin().display()
                )
            });
        let mut driver = DriverGuard(Some(driver));
        wait_ready(&mut driver, driver_addr, dir.path()).await;

        let profile = dir.path().join("profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": trust.is_none(),
            "pageLoadStrategy": "normal",
            "timeouts": {
                "implicit": 0,
                "pageLoad": PAGE_LOAD_LIMIT.as_millis() as u64,
                "script": SCRIPT_LIMIT.as_millis() as u64,
            },
            "goog:chromeOptions": { "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are an object")
        };
        let url = format!("http://{driver_addr}");
        let connect = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await;
        let client = match connect {
            Ok(client) => client,
            Err(e) => panic!(
                "chromedriver could not start Chromium: {e}\n{}",
                tail(&dir.path().join("chromedriver.log"))
            ),
        };
        let session = client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session id");
        // Drop closes the session itself (the client's own close needs a running runtime).
        let _ = client.persist().await;
        let chromium_pid = client
            .capabilities()
            .and_then(|c| c.get("goog:processID"))
            .and_then(Value::as_u64);
        Browser {
            client,
            session,
            driver: driver.0.take().expect("chromedriver is running"),
            driver_addr,
            chromium_pid,
            dir,
        }
    }

    /// fantoccini's client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        self.run(&format!("goto {url}"), self.client.goto(url))
            .await;
    }

    /// The address of the current page.
    pub async fn url(&self) -> String {
        self.run("current url", self.client.current_url())
            .await
            .to_string()
    }

    pub async fn title(&self) -> String {
        self.run("title", self.client.title()).await
    }

    /// The current page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.run("page source", self.client.source()).await
    }

    /// The element `css` selects, waiting up to [`BROWSER_WAIT`] for it to exist.
    pub async fn find(&self, css: &str) -> Element {
        self.wait_for_some(&format!("an element {css}"), || self.try_find(css))
            .await
    }

    /// The element `css` selects now, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        match self
            .bounded(&format!("find {css}"), self.client.find(Locator::Css(css)))
            .await
        {
            Ok(element) => Some(element),
            Err(e) if e.is_no_such_element() => None,
            Err(e) => self.fail(&format!("find {css}"), e),
        }
    }

    /// Every element `css` selects now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.run(
            &format!("find all {css}"),
            self.client.find_all(Locator::Css(css)),
        )
        .await
    }

    /// The form control whose `<label>` reads `label` (whitespace trimmed and collapsed), or
    /// else the element whose `aria-label` is `label`; waits up to [`BROWSER_WAIT`].
    pub async fn find_by_label(&self, label: &str) -> Element {
        self.wait_for_some(&format!("a control labelled {label:?}"), || {
            self.try_find_by_label(label)
        })
        .await
    }

    /// The control labelled `label` now, if any.
    pub async fn try_find_by_label(&self, label: &str) -> Option<Element> {
        const SCRIPT: &str = r#"
            const want = arguments[0];
            const norm = (s) => s.replace(/\s+/g, ' ').trim();
            for (const l of document.querySelectorAll('label')) {
                if (norm(l.textContent) === want && l.control) return l.control;
            }
            for (const e of document.querySelectorAll('[aria-label]')) {
                if (norm(e.getAttribute('aria-label')) === want) return e;
            }
            return null;
        "#;
        let found = self.execute(SCRIPT, vec![json!(label)]).await;
        self.element_from(&found)
    }

    /// The button (`<button>`, or an `<input>` of type submit or button) that reads `text`;
    /// waits up to [`BROWSER_WAIT`].
    pub async fn find_button(&self, text: &str) -> Element {
        const SCRIPT: &str = r#"
            const want = arguments[0];
            const norm = (s) => s.replace(/\s+/g, ' ').trim();
            for (const b of document.querySelectorAll('button, input[type=submit], input[type=button]')) {
                const text = b.tagName === 'INPUT' ? b.value : b.textContent;
                if (norm(text) === want) return b;
            }
            return null;
        "#;
        self.wait_for_some(&format!("a button {text:?}"), || async move {
            let found = self.execute(SCRIPT, vec![json!(text)]).await;
            self.element_from(&found)
        })
        .await
    }

    /// Types `value` into the field `css` selects, after clearing it.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        self.fill_element(&field, css, value).await;
    }

    /// Types `value` into the field labelled `label`, after clearing it.
    pub async fn fill_label(&self, label: &str, value: &str) {
        let field = self.find_by_label(label).await;
        self.fill_element(&field, label, value).await;
    }

    async fn fill_element(&self, field: &Element, what: &str, value: &str) {
        self.run(&format!("clear {what}"), field.clear()).await;
        self.run(&format!("type into {what}"), field.send_keys(value))
            .await;
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.run(&format!("click {css}"), element.click()).await;
    }

    /// Clicks the button that reads `text`.
    pub async fn click_button(&self, text: &str) {
        let button = self.find_button(text).await;
        self.run(&format!("click button {text:?}"), button.click())
            .await;
    }

    /// The rendered text of the element `css` selects (waiting for it to exist).
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.run(&format!("text of {css}"), element.text()).await
    }

    /// The rendered text of the element `css` selects now, if there is one.
    pub async fn try_text(&self, css: &str) -> Option<String> {
        let element = self.try_find(css).await?;
        // It may have gone since it was found.
        self.bounded(&format!("text of {css}"), element.text())
            .await
            .ok()
    }

    /// Waits up to [`BROWSER_WAIT`] until the element `css` selects contains `needle` in its
    /// rendered text; returns the whole text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        self.wait_for_some(&format!("{css} to contain {needle:?}"), || async move {
            self.try_text(css).await.filter(|t| t.contains(needle))
        })
        .await
    }

    /// Waits up to [`BROWSER_WAIT`] until nothing matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        self.wait_for_some(&format!("{css} to be gone"), || async move {
            self.try_find(css).await.is_none().then_some(())
        })
        .await
    }

    /// Waits up to [`BROWSER_WAIT`] until the current URL contains `needle`.
    pub async fn wait_for_url(&self, needle: &str) -> String {
        self.wait_for_some(&format!("the URL to contain {needle:?}"), || async move {
            Some(self.url().await).filter(|u| u.contains(needle))
        })
        .await
    }

    /// Waits up to [`BROWSER_WAIT`] until the JavaScript `condition` (the body of a function:
    /// `return document.title === 'x'`) returns a true value.
    pub async fn wait_until(&self, what: &str, condition: &str) {
        self.wait_for_some(what, || async move {
            let value = self
                .bounded(what, self.client.execute(condition, Vec::new()))
                .await;
            truthy(&value.ok()?).then_some(())
        })
        .await
    }

    /// Polls `f` until it gives `Some`, up to [`BROWSER_WAIT`]; on timeout takes a screenshot
    /// and fails with `what`. For conditions in Rust:
    /// `browser.wait_for_some("a row", || async move { browser.try_find("tr.lb").await }).await`.
    pub async fn wait_for_some<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
        loop {
            if let Ok(Some(value)) = tokio::time::timeout_at(deadline, f()).await {
                return value;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let shot = self.try_screenshot(&format!("timeout-{what}")).await;
                let at = match self.bounded("current url", self.client.current_url()).await {
                    Ok(url) => url.to_string(),
                    Err(e) => format!("unknown: {e}"),
                };
                panic!(
                    "browser: timed out after {BROWSER_WAIT:?} waiting for {what} (at {at}; \
                     screenshot: {shot})"
                );
            }
            tokio::time::sleep_until((now + crate::POLL_INTERVAL).min(deadline)).await;
        }
    }

    /// Runs JavaScript (the body of a function; `arguments` holds `args`) and returns what it
    /// returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.run("execute a script", self.client.execute(script, args))
            .await
    }

    /// Runs `fetch(url, {method, body, headers})` in the page, with the page's cookies
    /// (`credentials: 'same-origin'`) and without following redirects. For requests a test
    /// forges from the page: a POST without the CSRF token the console's forms carry.
    pub async fn fetch(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> FetchReply {
        const SCRIPT: &str = r#"
            const [method, url, headers, body, done] = arguments;
            fetch(url, { method, headers, body: body === null ? undefined : body,
                         credentials: 'same-origin', redirect: 'manual' })
                .then(async (r) => done({ status: r.status, kind: r.type,
                                          headers: [...r.headers], body: await r.text() }))
                .catch((e) => done({ error: String(e) }));
        "#;
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), json!(v)))
            .collect();
        let what = format!("fetch {method} {url}");
        let answer = self
            .run(
                &what,
                self.client.execute_async(
                    SCRIPT,
                    vec![json!(method), json!(url), json!(headers), json!(body)],
                ),
            )
            .await;
        if let Some(error) = answer.get("error") {
            panic!("browser: {what}: {error}");
        }
        FetchReply {
            status: answer["status"].as_u64().unwrap_or_default() as u16,
            kind: answer["kind"].as_str().unwrap_or_default().to_owned(),
            headers: answer["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| {
                    Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned()))
                })
                .collect(),
            body: answer["body"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// POSTs `fields` as `application/x-www-form-urlencoded` to `url` with [`Browser::fetch`].
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> FetchReply {
        let body = fields
            .iter()
            .map(|(n, v)| format!("{}={}", form_encode(n), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.fetch(
            "POST",
            url,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(&body),
        )
        .await
    }

    /// Builds a `<form method=post action=action>` with `fields` as hidden inputs in the
    /// current page and submits it, as a forged form would: the browser navigates to the
    /// answer. Waits until the new document has loaded.
    pub async fn submit_form_to(&self, action: &str, fields: &[(&str, &str)]) {
        const SCRIPT: &str = r#"
            const [action, fields] = arguments;
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            for (const [name, value] of fields) {
                const input = document.createElement('input');
                input.type = 'hidden';
                input.name = name;
                input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            window.__fulcrumOldDocument = true;
            HTMLFormElement.prototype.submit.call(form);
        "#;
        let fields: Vec<Value> = fields.iter().map(|(n, v)| json!([n, v])).collect();
        self.execute(SCRIPT, vec![json!(action), json!(fields)])
            .await;
        self.wait_until(
            &format!("the answer of the form posted to {action}"),
            "return window.__fulcrumOldDocument === undefined && document.readyState === 'complete'",
        )
        .await;
    }

    /// Every cookie the browser would send to the current page (HttpOnly ones too).
    pub async fn cookies(&self) -> Vec<BrowserCookie> {
        let cookies = self
            .run("read cookies", self.client.get_all_cookies())
            .await;
        cookies
            .into_iter()
            .map(|c| BrowserCookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                domain: c.domain().map(str::to_owned),
                path: c.path().map(str::to_owned),
                secure: c.secure().unwrap_or(false),
                http_only: c.http_only().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()),
                expires: c.expires_datetime().map(|t| t.unix_timestamp()),
            })
            .collect()
    }

    /// The cookie named `name`, if the browser holds one for the current page.
    pub async fn cookie(&self, name: &str) -> Option<BrowserCookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// `document.cookie`: the cookies the page's scripts can read (HttpOnly ones are not).
    pub async fn document_cookie(&self) -> String {
        let value = self.execute("return document.cookie", Vec::new()).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Saves a PNG of the viewport as `target/console-screenshots/<name>.png` (under
    /// `CARGO_TARGET_DIR` when set) and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.run("screenshot", self.client.screenshot()).await;
        save_screenshot(name, &png)
    }

    async fn try_screenshot(&self, name: &str) -> String {
        match self.bounded("screenshot", self.client.screenshot()).await {
            Ok(png) => save_screenshot(name, &png).display().to_string(),
            Err(e) => format!("none ({e})"),
        }
    }

    /// The last lines of chromedriver's log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.dir.path().join("chromedriver.log"))
    }

    fn element_from(&self, value: &Value) -> Option<Element> {
        let id = value.get(ELEMENT_KEY)?.as_str()?;
        Some(Element::from_element_id(
            self.client.clone(),
            ElementRef::from(id.to_owned()),
        ))
    }

    /// `command` bounded by [`COMMAND_LIMIT`].
    async fn bounded<T>(
        &self,
        what: &str,
        command: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> Result<T, fantoccini::error::CmdError> {
        match tokio::time::timeout(COMMAND_LIMIT, command).await {
            Ok(result) => result,
            Err(_) => panic!(
                "browser: {what}: no answer from chromedriver within {COMMAND_LIMIT:?}\n{}",
                self.log_tail()
            ),
        }
    }

    /// `command` bounded in time, or a failure that says what was being done.
    async fn run<T>(
        &self,
        what: &str,
        command: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> T {
        match self.bounded(what, command).await {
            Ok(value) => value,
            Err(e) => self.fail(what, e),
        }
    }

    fn fail(&self, what: &str, error: fantoccini::error::CmdError) -> ! {
        panic!("browser: {what}: {error}")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Blocking WebDriver calls: no runtime is needed, and a panicking test's runtime may
        // be unusable.
        if std::thread::panicking() {
            let name = std::thread::current()
                .name()
                .map_or_else(|| "panic".to_owned(), |n| format!("panic-{n}"));
            if let Some(png) = driver_screenshot(self.driver_addr, &self.session) {
                let path = save_screenshot(&name, &png);
                eprintln!("browser: screenshot at the panic: {}", path.display());
            }
        }
        let closed = driver_call(
            self.driver_addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        )
        .is_some();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // chromedriver quits Chromium when the session closes; if that failed, Chromium
        // outlives chromedriver: end it by the process id chromedriver gave.
        if let (false, Some(pid)) = (closed, self.chromium_pid) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Kills a chromedriver that has not been handed to a [`Browser`] yet (a failed start).
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn chromedriver_bin() -> PathBuf {
    std::env::var_os("CHROMEDRIVER_BIN").map_or_else(|| PathBuf::from(CHROMEDRIVER), PathBuf::from)
}

fn free_port() -> SocketAddr {
    // Bound and released: chromedriver takes a port number and does not say which it picked.
    TcpListener::bind(crate::loopback_any())
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// Polls chromedriver's `/status` until it says ready.
async fn wait_ready(driver: &mut DriverGuard, addr: SocketAddr, dir: &Path) {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let ready = driver_call(addr, "GET", "/status", None)
            .is_some_and(|status| status["value"]["ready"] == Value::Bool(true));
        if ready {
            return;
        }
        let child = driver.0.as_mut().expect("chromedriver is running");
        if let Ok(Some(status)) = child.try_wait() {
            let out = std::fs::read_to_string(dir.join("chromedriver.out")).unwrap_or_default();
            panic!("chromedriver exited at start ({status}): {out}");
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not say ready within {START_LIMIT:?}: {}",
            tail(&dir.join("chromedriver.log"))
        );
        tokio::time::sleep(crate::POLL_INTERVAL).await;
    }
}

/// One blocking WebDriver call (HTTP/1.1 on loopback, bounded in time): its JSON, or `None`
/// if chromedriver did not answer 200.
fn driver_call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Option<Value> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).ok()?;
    // chromedriver keeps the connection open after its answer: read up to Content-Length.
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = find(&answer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())?;
            if answer.len() >= end + 4 + length {
                if !head.starts_with("http/1.1 200") {
                    return None;
                }
                return serde_json::from_slice(&answer[end + 4..end + 4 + length]).ok();
            }
        }
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        answer.extend_from_slice(&buf[..n]);
    }
}

fn driver_screenshot(addr: SocketAddr, session: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let answer = driver_call(addr, "GET", &format!("/session/{session}/screenshot"), None)?;
    base64::engine::general_purpose::STANDARD
        .decode(answer["value"].as_str()?)
        .ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Adds `ca_pem` as a trusted TLS root to the NSS database in `home/.pki/nssdb`, where
/// Chromium on Linux looks for the user's roots.
fn trust_ca(home: &Path, ca_pem: &str) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).expect("the browser's NSS database directory");
    let ca_file = home.join("trusted-ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write the CA to trust");
    let db_arg = format!("sql:{}", db.display());
    let certutil = |args: &[&str]| {
        let out = Command::new("certutil")
            .arg("-d")
            .arg(&db_arg)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run certutil ({e}); install Debian's libnss3-tools (scripts/test does)"
                )
            });
        assert!(
            out.status.success(),
            "certutil {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    certutil(&["-N", "--empty-password"]);
    let ca_path = ca_file.display().to_string();
    certutil(&["-A", "-n", "fulcrum test CA", "-t", "C,,", "-i", &ca_path]);
}

/// `target/console-screenshots/<name>.png`, the directory made if needed.
fn save_screenshot(name: &str, png: &[u8]) -> PathBuf {
    let dir = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    let mut file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !file.ends_with(".png") {
        file.push_str(".png");
    }
    let path = dir.join(file);
    std::fs::write(&path, png).expect("write the screenshot");
    path
}

/// `CARGO_TARGET_DIR` (relative to the workspace when relative), else the workspace's `target`.
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace holds crates/testkit");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `application/x-www-form-urlencoded`, as browsers write it.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
