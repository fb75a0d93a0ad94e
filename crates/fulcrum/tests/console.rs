//! The web console in a real headless Chromium (Debian's chromium and chromium-driver), against
//! a real `fulcrum serve` over the API's TLS: sign-in, ELB's create wizard with a certificate
//! uploaded in the same step and then HTTPS traffic to the new listener, a second load balancer
//! on the existing certificate, live instance health, errors beside their field, and what is
//! refused (no session, a forged form, guessed secrets). Screenshots of the main pages go to
//! `target/console-screenshots/`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{bind_address, Fulcrum, Serve};
use fulcrum_testkit::{client_tls_config, https_get, Backend, Browser, TestCa};
use serde_json::json;

/// A node with the API over TLS (its own CA in DIR/api-ca.pem), and a browser that trusts
/// that CA only, signed in with the admin key.
struct Console {
    node: Fulcrum,
    browser: Browser,
    base: String,
    _dir: tempfile::TempDir,
}

impl Console {
    async fn start() -> Console {
        let dir = tempfile::tempdir().unwrap();
        let mut node = Serve::new(dir.path(), bind_address())
            .args(&["--api-tls", "self-signed"])
            .spawn();
        node.wait_stdout("the API's CA file", |l| l.contains("--ca-bundle"))
            .await;
        let ca = std::fs::read_to_string(dir.path().join("api-ca.pem")).unwrap();
        let api = node.api.unwrap();
        let tls = client_tls_config(&ca, &[]);
        fulcrum_testkit::eventually("/healthz 200 over TLS", Duration::from_secs(20), || {
            let tls = tls.clone();
            async move {
                https_get(api, "localhost", tls, "/healthz", &[])
                    .await
                    .is_ok_and(|r| r.status == 200)
            }
        })
        .await;
        let browser = Browser::start_trusting(&ca).await;
        let base = format!("https://{}:{}/console", api.ip(), api.port());
        Console {
            node,
            browser,
            base,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn sign_in(&self) {
        let (id, secret) = self.node.credentials();
        self.browser.goto(&self.url("/sign-in")).await;
        self.browser.fill("#AccessKeyId", &id).await;
        self.browser.fill("#SecretAccessKey", &secret).await;
        self.browser.click("button[type=submit]").await;
        self.browser.wait_for_url("/console/load-balancers").await;
    }

    /// Sets a select (or any field) by id, as a person choosing an option would.
    async fn choose(&self, id: &str, value: &str) {
        self.browser
            .execute(
                "const el = document.getElementById(arguments[0]); el.value = arguments[1]; \
                 el.dispatchEvent(new Event('change', { bubbles: true }));",
                vec![json!(id), json!(value)],
            )
            .await;
    }

    /// The wizard's next step.
    async fn next(&self) {
        self.browser.click("#next").await;
    }

    /// Opens the wizard and fills its first step: `name`, one listener `protocol`:`port` in
    /// front of `backend`'s port over HTTP.
    async fn wizard(&self, name: &str, protocol: &str, port: u16, backend: &Backend) {
        let b = &self.browser;
        b.goto(&self.url("/load-balancers/new")).await;
        b.fill("#LoadBalancerName", name).await;
        self.choose("Listeners-member-1-Protocol", protocol).await;
        b.fill("#Listeners-member-1-LoadBalancerPort", &port.to_string())
            .await;
        b.fill(
            "#Listeners-member-1-InstancePort",
            &backend.addr().port().to_string(),
        )
        .await;
    }

    /// Fills the health-check step: `target`, every 5 s (0.5 s at the tests' time scale),
    /// two passes to come in.
    async fn fast_health_check(&self, target: &str) {
        let b = &self.browser;
        b.fill("#HealthCheck-Target", target).await;
        b.fill("#HealthCheck-Interval", "5").await;
        b.fill("#HealthCheck-Timeout", "2").await;
        b.fill("#HealthCheck-HealthyThreshold", "2").await;
    }

    /// Creates an HTTP load balancer `name` on `port` in front of `backend` with the wizard.
    async fn create_http(&self, name: &str, port: u16, backend: &Backend) {
        let b = &self.browser;
        self.wizard(name, "HTTP", port, backend).await;
        self.next().await;
        self.next().await;
        self.fast_health_check(&format!("HTTP:{}/", backend.addr().port()))
            .await;
        self.next().await;
        b.fill("#InstancesText", &backend.addr().ip().to_string())
            .await;
        self.next().await;
        self.next().await;
        b.click("#create").await;
        b.wait_for_url(&format!("/console/load-balancers/{name}"))
            .await;
    }

    /// Uploads a certificate on the certificates page.
    async fn upload(&self, name: &str, body: &str, key: &str) {
        let b = &self.browser;
        b.goto(&self.url("/certificates")).await;
        b.fill("#ServerCertificateName", name).await;
        b.fill("#CertificateBody", body).await;
        b.fill("#PrivateKey", key).await;
        b.click("form[action='/console/certificates'] button[type=submit]")
            .await;
        b.wait_for_text(".notice", &format!("Uploaded {name}"))
            .await;
    }

    /// The page fits the 1280 px window: no horizontal scrolling.
    async fn fits(&self) {
        let b = &self.browser;
        let wide = b
            .execute("return document.documentElement.scrollWidth", vec![])
            .await;
        let seen = b.execute("return window.innerWidth", vec![]).await;
        assert!(
            wide.as_u64() <= seen.as_u64(),
            "the page is {wide} px wide in a {seen} px window"
        );
    }
}

fn free_port() -> u16 {
    fulcrum_testkit::closed_port().port()
}

/// An HTTPS request to the new listener, trusting only `ca` for `name`: it succeeds only if the
/// listener serves the certificate `ca` issued for `name`.
async fn https_through(listener: SocketAddr, name: &str, ca: &TestCa) -> String {
    let config = client_tls_config(&ca.cert_pem(), &[b"http/1.1"]);
    let answer = std::sync::Mutex::new(String::new());
    fulcrum_testkit::eventually(
        "the new HTTPS listener to answer with the uploaded certificate",
        Duration::from_secs(20),
        || {
            let config = config.clone();
            let answer = &answer;
            async move {
                match https_get(listener, name, config, "/", &[]).await {
                    Ok(reply) if reply.status == 200 => {
                        *answer.lock().unwrap() = String::from_utf8_lossy(&reply.body).into_owned();
                        true
                    }
                    other => {
                        eprintln!("HTTPS to {listener} as {name}: {other:?}");
                        false
                    }
                }
            }
        },
    )
    .await;
    answer.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wizard_uploads_a_certificate_and_creates_an_https_load_balancer_then_a_second_reuses_it(
) {
    let c = Console::start().await;
    let b = &c.browser;

    // Without a session, every page leads to sign-in.
    b.goto(&c.url("/load-balancers")).await;
    b.wait_for_url("/console/sign-in").await;
    b.screenshot("sign-in").await;
    c.sign_in().await;
    let cookie = b.cookie("fulcrum_console").await.expect("a session cookie");
    assert!(cookie.http_only, "{cookie:?}");
    assert!(cookie.secure, "over TLS the cookie is Secure: {cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"), "{cookie:?}");

    let backend = Backend::start("web-1").await;
    let ca = TestCa::new("console CA");
    let (body, key) = ca.issue(&["web.example.test"]);
    let port = free_port();

    c.wizard("web", "HTTPS", port, &backend).await;
    c.next().await;
    b.click("input[name=CertificateSource][value=upload]").await;
    b.fill("#ServerCertificateName", "web-cert").await;
    b.fill("#CertificateBody", &body).await;
    b.fill("#PrivateKey", &key).await;
    c.next().await;
    c.fast_health_check(&format!("HTTP:{}/", backend.addr().port()))
        .await;
    c.next().await;
    b.fill("#InstancesText", &backend.addr().ip().to_string())
        .await;
    c.next().await;
    b.fill("#Tags-member-1-Key", "team").await;
    b.fill("#Tags-member-1-Value", "edge").await;
    c.next().await;
    b.wait_for_text("#review", "upload web-cert").await;
    b.screenshot("wizard-review").await;
    b.click("#create").await;
    b.wait_for_url("/console/load-balancers/web").await;
    b.wait_for_text(".notice", "Created web").await;

    // The instance comes InService in the page, without a reload.
    b.wait_for_text(
        &format!("tr[data-instance='{}'] .state", backend.addr().ip()),
        "InService",
    )
    .await;
    // HTTPS through the new listener: the certificate uploaded in the wizard is served.
    let listener = SocketAddr::new(c.node.bind.unwrap(), port);
    let answer = https_through(listener, "web.example.test", &ca).await;
    assert!(answer.contains("web-1"), "{answer}");
    b.screenshot("load-balancer").await;

    // A second load balancer chooses the certificate that is there now.
    let port2 = free_port();
    c.wizard("api", "HTTPS", port2, &backend).await;
    c.next().await;
    b.click("input[name=CertificateSource][value=existing]")
        .await;
    let options = b.text("#SSLCertificateId").await;
    assert!(
        options.contains("web-cert") && options.contains("web.example.test"),
        "{options}"
    );
    c.choose("SSLCertificateId", "web-cert").await;
    c.next().await;
    c.fast_health_check(&format!("TCP:{}", backend.addr().port()))
        .await;
    c.next().await;
    b.fill("#InstancesText", &backend.addr().ip().to_string())
        .await;
    c.next().await;
    c.next().await;
    b.click("#create").await;
    b.wait_for_url("/console/load-balancers/api").await;
    https_through(
        SocketAddr::new(c.node.bind.unwrap(), port2),
        "web.example.test",
        &ca,
    )
    .await;

    // The certificate, with its domain, issuer and both listeners that use it.
    b.goto(&c.url("/certificates")).await;
    let row = b.text("tr[data-certificate='web-cert']").await;
    for expected in ["web.example.test", "console CA", "web:", "api:"] {
        assert!(row.contains(expected), "{expected} not in {row}");
    }
    // Deleting it is refused while listeners use it, with the API's words.
    b.click("tr[data-certificate='web-cert'] summary").await;
    b.click("button[aria-label='Delete certificate web-cert']")
        .await;
    let refused = b.wait_for_text(".form-error", "DeleteConflict").await;
    assert!(refused.contains("in use"), "{refused}");
    b.screenshot("certificates").await;

    c.fits().await;
    b.goto(&c.url("/load-balancers")).await;
    c.fits().await;
    let list = b.text("table.list").await;
    assert!(
        list.contains("web") && list.contains("api") && list.contains("HTTPS:"),
        "{list}"
    );
    b.screenshot("load-balancers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_show_beside_their_field_and_nothing_is_half_created() {
    let c = Console::start().await;
    let b = &c.browser;
    c.sign_in().await;
    let ca = TestCa::new("console CA");
    let (body, _) = ca.issue(&["a.example.test"]);
    let (_, other_key) = ca.issue(&["b.example.test"]);

    // A key that does not match the certificate: shown beside the key, in the security step.
    b.goto(&c.url("/load-balancers/new")).await;
    b.fill("#LoadBalancerName", "half").await;
    c.choose("Listeners-member-1-Protocol", "HTTPS").await;
    b.fill(
        "#Listeners-member-1-LoadBalancerPort",
        &free_port().to_string(),
    )
    .await;
    c.next().await;
    b.click("input[name=CertificateSource][value=upload]").await;
    b.fill("#ServerCertificateName", "mismatch").await;
    b.fill("#CertificateBody", &body).await;
    b.fill("#PrivateKey", &other_key).await;
    for _ in 0..4 {
        c.next().await;
    }
    b.click("#create").await;
    let error = b
        .wait_for_text("#PrivateKey-error", "KeyPairMismatch")
        .await;
    assert!(!error.is_empty());
    assert_eq!(
        b.execute(
            "return document.getElementById('PrivateKey').getAttribute('aria-invalid')",
            vec![]
        )
        .await,
        json!("true")
    );
    assert_eq!(
        b.text("#LoadBalancerName").await,
        "",
        "an input has no text"
    );
    b.screenshot("wizard-error").await;

    // A health check the model refuses: beside its field; no certificate or load balancer left.
    b.click("input[name=CertificateSource][value=upload]").await;
    let (good_body, good_key) = ca.issue(&["half.example.test"]);
    b.fill("#CertificateBody", &good_body).await;
    b.fill("#PrivateKey", &good_key).await;
    c.next().await;
    b.fill("#HealthCheck-Interval", "1").await;
    for _ in 0..3 {
        c.next().await;
    }
    b.click("#create").await;
    b.wait_for_text("#HealthCheck-Interval-error", "Interval 1 is invalid")
        .await;
    b.goto(&c.url("/load-balancers")).await;
    b.wait_for_text("main", "No load balancers yet").await;
    b.goto(&c.url("/certificates")).await;
    b.wait_for_text("main", "No certificates uploaded yet")
        .await;

    // A form posted without the session's CSRF token changes nothing.
    let forged = b
        .post_form(
            &c.url("/instances"),
            &[("InstanceId", "i-forged"), ("Address", "10.0.0.9")],
        )
        .await;
    assert_eq!(forged.status, 403, "{forged:?}");
    b.goto(&c.url("/instances")).await;
    assert!(!b.text("main").await.contains("i-forged"));

    // Signed out: the cookie is gone and pages lead to sign-in again.
    b.click("header button[type=submit]").await;
    b.wait_for_url("/console/sign-in").await;
    b.goto(&c.url("/instances")).await;
    b.wait_for_url("/console/sign-in").await;

    // Guessing secrets: after five failures from one address, sign-in waits.
    let (id, _) = c.node.credentials();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let reply = b
            .post_form(
                &c.url("/sign-in"),
                &[("AccessKeyId", &id), ("SecretAccessKey", "wrong")],
            )
            .await;
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_goes_out_of_service_in_the_page_when_its_server_stops() {
    let c = Console::start().await;
    let b = &c.browser;
    c.sign_in().await;
    let backend = Backend::start("stops").await;
    let ip = backend.addr().ip().to_string();

    b.goto(&c.url("/instances")).await;
    b.fill("#InstanceId", "i-web1").await;
    b.fill("#Address", &ip).await;
    b.click("form[action='/console/instances'] button[type=submit]")
        .await;
    b.wait_for_text(".notice", "Saved i-web1").await;
    b.screenshot("instances").await;

    c.wizard("live", "HTTP", free_port(), &backend).await;
    c.next().await;
    c.next().await;
    c.fast_health_check(&format!("HTTP:{}/", backend.addr().port()))
        .await;
    c.next().await;
    b.click("input[name=Instances][value=i-web1]").await;
    c.next().await;
    c.next().await;
    b.click("#create").await;
    b.wait_for_url("/console/load-balancers/live").await;
    let state = "tr[data-instance='i-web1'] .state";
    b.wait_for_text(state, "InService").await;

    backend.stop().await;
    // The page refreshes itself: no reload, no navigation.
    b.wait_for_text(state, "OutOfService").await;
    let reason = b.text("tr[data-instance='i-web1'] .reason").await;
    assert!(reason.starts_with("Instance:"), "{reason}");
    b.screenshot("instance-out-of-service").await;

    b.goto(&c.url("/load-balancers/live/monitoring")).await;
    b.wait_for_text("main", "Latency").await;
    b.screenshot("monitoring").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_page_edits_rotates_a_certificate_tails_the_log_and_deletes_with_confirmation() {
    let c = Console::start().await;
    let b = &c.browser;
    c.sign_in().await;
    let backend = Backend::start("edited").await;
    let port = free_port();
    c.create_http("edited", port, &backend).await;
    let http = SocketAddr::new(c.node.bind.unwrap(), port);
    b.wait_for_text(
        &format!("tr[data-instance='{}'] .state", backend.addr().ip()),
        "InService",
    )
    .await;
    c.fits().await;

    // An HTTPS listener on certificate "one", then rotated to "two".
    let ca = TestCa::new("rotation CA");
    let (one_body, one_key) = ca.issue(&["one.example.test"]);
    let (two_body, two_key) = ca.issue(&["two.example.test"]);
    c.upload("one", &one_body, &one_key).await;
    c.upload("two", &two_body, &two_key).await;
    let tls_port = free_port();
    b.goto(&c.url("/load-balancers/edited")).await;
    b.click("details summary").await;
    c.choose("Listeners-member-1-Protocol", "HTTPS").await;
    b.fill(
        "#Listeners-member-1-LoadBalancerPort",
        &tls_port.to_string(),
    )
    .await;
    b.fill(
        "#Listeners-member-1-InstancePort",
        &backend.addr().port().to_string(),
    )
    .await;
    c.choose("Listeners-member-1-SSLCertificateId", "one").await;
    b.click("form[action$='/listeners'] button[type=submit]")
        .await;
    b.wait_for_text(".notice", "Listener added").await;
    let https = SocketAddr::new(c.node.bind.unwrap(), tls_port);
    https_through(https, "one.example.test", &ca).await;
    let form = format!("form[action$='/certificate']:has(input[value='{tls_port}'])");
    c.choose(&format!("SSLCertificateId-{tls_port}"), "two")
        .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for_text(".notice", "Certificate changed").await;
    https_through(https, "two.example.test", &ca).await;

    // Stickiness on the HTTP listener: the balancer's cookie comes back.
    let sticky = format!("form[action$='/stickiness']:has(input[value='{port}'])");
    b.click(&format!("{sticky} input[name=Enabled]")).await;
    b.click(&format!("{sticky} button[type=submit]")).await;
    b.wait_for_text(".notice", "Stickiness saved").await;
    fulcrum_testkit::eventually(
        "the AWSELB cookie",
        Duration::from_secs(10),
        || async move {
            fulcrum_testkit::http_get(http, "/", &[("host", "edited.test")])
                .await
                .is_ok_and(|r| {
                    r.headers
                        .get_all("set-cookie")
                        .iter()
                        .any(|v| v.to_str().unwrap_or("").starts_with("AWSELB="))
                })
        },
    )
    .await;

    // An attribute out of range: the model's words beside the field; then a good one.
    b.fill("#IdleTimeout", "0").await;
    b.click("form[action$='/attributes'] button[type=submit]")
        .await;
    b.wait_for_text("#IdleTimeout-error", "IdleTimeout 0 is invalid")
        .await;
    b.fill("#IdleTimeout", "120").await;
    b.click("form[action$='/attributes'] button[type=submit]")
        .await;
    b.wait_for_text(".notice", "Attributes saved").await;
    assert_eq!(
        b.execute(
            "return document.getElementById('IdleTimeout').value",
            vec![]
        )
        .await,
        json!("120")
    );

    // The live tail shows a request made while the page is open.
    b.goto(&c.url("/load-balancers/edited/monitoring")).await;
    fulcrum_testkit::eventually(
        "a logged request in the page's tail",
        Duration::from_secs(15),
        || async move {
            let _ = fulcrum_testkit::http_get(http, "/tailed", &[("host", "edited.test")]).await;
            b.try_text("#tail")
                .await
                .is_some_and(|t| t.contains("/tailed HTTP/1.1"))
        },
    )
    .await;
    b.screenshot("monitoring-tail").await;

    // Deletion wants the name typed; a wrong one is shown beside the field.
    b.goto(&c.url("/load-balancers/edited")).await;
    b.fill("#Confirm", "edite").await;
    b.click("form[action$='/delete'] button[type=submit]").await;
    b.wait_for_text("#Confirm-error", "Type the load balancer's name")
        .await;
    b.fill("#Confirm", "edited").await;
    b.click("form[action$='/delete'] button[type=submit]").await;
    b.wait_for_text(".notice", "Deleted edited").await;
    assert!(b.text("main").await.contains("No load balancers yet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_signs_in_to_a_read_only_console() {
    let c = Console::start().await;
    let b = &c.browser;
    c.sign_in().await;
    let backend = Backend::start("watched").await;
    c.create_http("watched", free_port(), &backend).await;
    b.click("header button[type=submit]").await;
    b.wait_for_url("/console/sign-in").await;

    let dir = c.node.data_dir.clone().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["key", "create", "--scope", "read-only", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("fulcrum key create");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let (id, secret) = (field("AccessKeyId"), field("SecretAccessKey"));
    b.goto(&c.url("/sign-in")).await;
    b.fill("#AccessKeyId", &id).await;
    b.fill("#SecretAccessKey", &secret).await;
    b.click("button[type=submit]").await;
    b.wait_for_url("/console/load-balancers").await;
    assert!(b.text("header").await.contains("read-only"));
    // It sees everything, and no control to change anything.
    assert!(b.text("table.list").await.contains("watched"));
    assert!(b
        .try_find("a[href='/console/load-balancers/new']")
        .await
        .is_none());
    b.goto(&c.url("/load-balancers/watched")).await;
    assert!(b.try_find("form[action$='/delete']").await.is_none());
    // A change posted anyway (with the session's own token) is refused as the API refuses it.
    let token = b
        .execute(
            "return document.querySelector('input[name=csrf]').value",
            vec![],
        )
        .await;
    let reply = b
        .post_form(
            &c.url("/load-balancers/watched/delete"),
            &[("csrf", token.as_str().unwrap()), ("Confirm", "watched")],
        )
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.body.contains("AccessDenied"), "{}", reply.body);
    b.goto(&c.url("/load-balancers")).await;
    assert!(
        b.text("table.list").await.contains("watched"),
        "still there"
    );
}
