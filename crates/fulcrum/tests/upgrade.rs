//! Upgrades and restarts of `fulcrum serve` under load: a second `serve` on the same data dir
//! takes over the listening sockets of the running one, which drains and exits 0, without a
//! failed request or a refused connection; a plain restart serves from its first `/healthz` 200
//! on (the health of instances carried over); SIGHUP re-reads the store and kills nothing.
//!
//! Every test runs real processes on loopback addresses of its own, with ELB's default health
//! check at its real pace (a first check within a second decides a starting node's view).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sdk_elasticloadbalancing as elb;
use common::{
    backends_on_one_port, bind_address, upgrade, wait_in_service, Fulcrum, Serve, HANDOVER_EXIT,
};
use fulcrum_model::{HealthCheck, InstanceId, Listener, Protocol};
use fulcrum_store::Store;
use fulcrum_testkit::{client_tls_config, eventually, http_get, https_get, Backend, Conn, TestCa};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const HTTP_PORT: u16 = 8080;
const HTTPS_PORT: u16 = 8443;
/// The name the listener's certificate is for.
const HOST: &str = "www.example.test";

/// A load balancer `app` with an HTTP and an HTTPS listener in front of `instances` (all on
/// one port), ELB's default health check, written into the store of `dir` before any node runs.
/// Returns the CA the certificate is signed by, as PEM.
fn seed(dir: &Path, instances: &[Backend]) -> String {
    let ca = TestCa::new("upgrade test CA");
    let (body, key) = ca.issue(&[HOST]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let cert = fulcrum_control::prepare_certificate(
        fulcrum_control::CertificateUpload {
            name: "app".to_owned(),
            path: None,
            body_pem: body,
            private_key_pem: fulcrum_model::PrivateKeyPem::new(key),
            chain_pem: None,
            tags: vec![],
        },
        now,
    )
    .expect("prepare the certificate");
    let port = instances[0].addr().port();
    let ids: Vec<InstanceId> = instances
        .iter()
        .map(|b| InstanceId::parse(&b.addr().ip().to_string()).expect("an instance id"))
        .collect();
    let store = Store::open(dir).expect("open the store");
    store
        .update(|state| {
            let cert_id = cert.id.clone();
            state.add_certificate(cert.clone())?;
            let mut https = Listener::new(Protocol::Https, HTTPS_PORT, Protocol::Http, port);
            https.certificates.push(cert_id);
            let http = Listener::new(Protocol::Http, HTTP_PORT, Protocol::Http, port);
            state.create_load_balancer("app", vec![http, https], now)?;
            state.configure_health_check("app", HealthCheck::default_for_port(port))?;
            state.register_instances("app", &ids)
        })
        .expect("write the state");
    ca.cert_pem()
}

/// `serve` on `dir` at ELB's real health-check pace.
fn serve(dir: &Path, bind: IpAddr) -> Serve {
    Serve::new(dir, bind).time_scale(1)
}

// ---------------------------------------------------------------------------------------------
// Load: clients that keep sending requests and count what they get.

/// What one client loop saw.
#[derive(Default)]
struct Tally {
    /// Requests answered 200.
    ok: AtomicU64,
    /// Everything else: statuses, refused or reset connections, failed handshakes.
    failures: Mutex<Vec<String>>,
    /// Keep-alive connections the server closed between requests (after a response that said
    /// `Connection: close`, or an HTTP/2 GOAWAY), opened again by the client as any does.
    reconnects: AtomicU64,
}

impl Tally {
    fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }

    fn count(&self, started: Instant, result: Result<fulcrum_testkit::Reply, String>) -> bool {
        match result {
            Ok(reply) if reply.status == 200 => {
                self.ok.fetch_add(1, Ordering::SeqCst);
                true
            }
            Ok(reply) => {
                self.fail(format!("{:?} in: {}", started.elapsed(), reply.describe()));
                false
            }
            Err(e) => {
                self.fail(format!("{:?} in: {e}", started.elapsed()));
                false
            }
        }
    }
}

/// How a client loop reaches the balancer.
#[derive(Clone, Copy, Debug)]
enum Client {
    /// A new HTTP/1.1 connection for every request.
    HttpNew,
    /// A new TLS connection (HTTP/1.1) for every request.
    HttpsNew,
    /// One HTTP/1.1 connection kept alive.
    HttpKeepAlive,
    /// One TLS connection speaking HTTP/2, kept alive.
    H2KeepAlive,
}

struct Load {
    running: Arc<AtomicBool>,
    loops: Vec<(Client, Arc<Tally>, JoinHandle<()>)>,
}

impl Load {
    fn start(bind: IpAddr, ca_pem: &str) -> Load {
        let running = Arc::new(AtomicBool::new(true));
        let loops = [
            Client::HttpNew,
            Client::HttpsNew,
            Client::HttpKeepAlive,
            Client::H2KeepAlive,
        ]
        .into_iter()
        .map(|client| {
            let tally = Arc::new(Tally::default());
            let task = tokio::spawn(client_loop(
                client,
                bind,
                ca_pem.to_owned(),
                Arc::clone(&running),
                Arc::clone(&tally),
            ));
            (client, tally, task)
        })
        .collect();
        Load { running, loops }
    }

    /// Requests answered 200 so far, by loop.
    fn oks(&self) -> Vec<u64> {
        self.loops.iter().map(|(_, t, _)| t.ok()).collect()
    }

    /// Waits until every loop has had `n` more requests answered than at `since`.
    async fn wait_more(&self, since: &[u64], n: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .oks()
            .iter()
            .zip(since)
            .any(|(now, then)| *now < then + n)
        {
            assert!(
                Instant::now() < deadline,
                "{what}: the clients did not get {n} more answers: {:?} -> {:?}; failures: {}",
                since,
                self.oks(),
                self.failures()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn failures(&self) -> String {
        self.loops
            .iter()
            .flat_map(|(client, tally, _)| {
                let failures = tally.failures.lock().unwrap().clone();
                failures
                    .into_iter()
                    .map(move |f| format!("{client:?}: {f}"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops the loops and returns (client, answered, reconnects, failures) for each.
    async fn stop(self) -> Vec<(Client, u64, u64, Vec<String>)> {
        self.running.store(false, Ordering::SeqCst);
        let mut out = Vec::new();
        for (client, tally, task) in self.loops {
            task.await.expect("a client loop");
            let failures = tally.failures.lock().unwrap().clone();
            out.push((
                client,
                tally.ok(),
                tally.reconnects.load(Ordering::SeqCst),
                failures,
            ));
        }
        out
    }
}

/// Sends requests until `running` goes false. Requests are paced a little, so that the nodes
/// under test keep some of the two CPUs.
async fn client_loop(
    client: Client,
    bind: IpAddr,
    ca_pem: String,
    running: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let http = SocketAddr::new(bind, HTTP_PORT);
    let https = SocketAddr::new(bind, HTTPS_PORT);
    let h1_tls = client_tls_config(&ca_pem, &[b"http/1.1"]);
    let h2_tls = client_tls_config(&ca_pem, &[b"h2"]);
    let connect = || async {
        match client {
            Client::HttpKeepAlive => Conn::http(http).await,
            _ => Conn::https(https, HOST, Arc::clone(&h2_tls)).await,
        }
    };
    let mut conn: Option<Conn> = None;
    while running.load(Ordering::SeqCst) {
        let started = Instant::now();
        match client {
            Client::HttpNew => {
                let result = http_get(http, "/", &[]).await.map_err(|e| e.to_string());
                tally.count(started, result);
            }
            Client::HttpsNew => {
                let result = https_get(https, HOST, Arc::clone(&h1_tls), "/", &[])
                    .await
                    .map_err(|e| e.to_string());
                tally.count(started, result);
            }
            Client::HttpKeepAlive | Client::H2KeepAlive => {
                if conn.as_ref().is_some_and(Conn::is_closed) {
                    tally.reconnects.fetch_add(1, Ordering::SeqCst);
                    conn = None;
                }
                if conn.is_none() {
                    match connect().await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            tally.fail(format!("connect: {e}"));
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().expect("a connection");
                let result = c.get("/", &[]).await;
                if result.as_ref().is_err_and(refused_unprocessed) {
                    // Not processed: sent again on a new connection, where it must be answered.
                    tally.reconnects.fetch_add(1, Ordering::SeqCst);
                    conn = None;
                    continue;
                }
                let closing = result
                    .as_ref()
                    .is_ok_and(|r| r.response_header("connection") == Some("close"));
                if !tally.count(started, result.map_err(|e| format!("{e:?}"))) || closing {
                    if closing {
                        tally.reconnects.fetch_add(1, Ordering::SeqCst);
                    }
                    conn = None;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether a request on a kept-alive connection was never processed, so that any client sends
/// it again on a new connection: the connection closed before the request was written (hyper's
/// pooled client retries these itself), or an HTTP/2 server had said GOAWAY (NO_ERROR) before
/// the request's stream (RFC 9113, 6.8).
fn refused_unprocessed(e: &fulcrum_testkit::BoxError) -> bool {
    if e.downcast_ref::<hyper::Error>()
        .is_some_and(hyper::Error::is_canceled)
    {
        return true;
    }
    let e = format!("{e:?}");
    e.contains("GoAway(") && e.contains("NO_ERROR")
}

/// Stops `load` and asserts that every loop got answers and nothing else.
async fn assert_no_failure(load: Load) {
    let results = load.stop().await;
    let mut report = String::new();
    for (client, ok, reconnects, failures) in &results {
        report.push_str(&format!(
            "{client:?}: {ok} answered, {reconnects} reconnects, {} failed\n",
            failures.len()
        ));
        for f in failures.iter().take(20) {
            report.push_str(&format!("    {f}\n"));
        }
    }
    eprintln!("{report}");
    assert!(
        results.iter().all(|(_, ok, _, f)| *ok > 0 && f.is_empty()),
        "requests failed or a client got nothing:\n{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// The API through the SDK, as an operator's tools use it, retries included.

fn sdk(node: &Fulcrum) -> elb::Client {
    let (id, secret) = node.credentials();
    let config = elb::Config::builder()
        .endpoint_url(format!("http://{}", node.api.expect("an API address")))
        .region(elb::config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(id, secret, None, None, "fulcrum"))
        .behavior_version(elb::config::BehaviorVersion::latest())
        // The SDK's standard retries: ServiceUnavailable (503) during a hand-over is retried.
        .retry_config(elb::config::retry::RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            elb::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(30))
                .build(),
        )
        .build();
    elb::Client::from_conf(config)
}

/// Writes a tag `n` on `app` with 1, 2, 3... until stopped; every write must succeed. Returns
/// the last value written.
fn api_writer(client: elb::Client, running: Arc<AtomicBool>) -> JoinHandle<Result<u64, String>> {
    tokio::spawn(async move {
        let mut n = 0u64;
        while running.load(Ordering::SeqCst) {
            let tag = elb::types::Tag::builder()
                .key("n")
                .value((n + 1).to_string())
                .build()
                .expect("a tag");
            client
                .add_tags()
                .load_balancer_names("app")
                .tags(tag)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "AddTags n={}: {}",
                        n + 1,
                        elb::error::DisplayErrorContext(&e)
                    )
                })?;
            n += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(n)
    })
}

/// The tag `n` of `app`, as the API reports it.
async fn tag_n(client: &elb::Client) -> u64 {
    let tags = client
        .describe_tags()
        .load_balancer_names("app")
        .send()
        .await
        .expect("DescribeTags");
    tags.tag_descriptions()
        .iter()
        .flat_map(|d| d.tags())
        .find(|t| t.key() == "n")
        .and_then(|t| t.value())
        .expect("the tag n")
        .parse()
        .expect("a number")
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_under_load_fails_no_request_twice_in_a_row() {
    let (instances, _) = backends_on_one_port(2).await;
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let ca = seed(dir.path(), &instances);
    let how = serve(dir.path(), bind);
    let mut old = how.clone().spawn_healthy().await;
    // The same API address for every process of the upgrade.
    let mut how = how;
    how.api = old.api.expect("an API address");
    wait_in_service(SocketAddr::new(bind, HTTP_PORT)).await;
    let api = sdk(&old);

    for round in 1..=2 {
        let load = Load::start(bind, &ca);
        let writing = Arc::new(AtomicBool::new(true));
        let writer = api_writer(api.clone(), Arc::clone(&writing));
        let before = load.oks();
        load.wait_more(&before, 20, "before the upgrade").await;

        // A request under way through the upgrade is answered by the old process.
        let slow = tokio::spawn(http_get(
            SocketAddr::new(bind, HTTP_PORT),
            "/delay/1500",
            &[],
        ));
        eventually(
            "the slow request at an instance",
            Duration::from_secs(5),
            || {
                let busy = instances.iter().map(Backend::in_flight).sum::<u64>() > 0;
                async move { busy }
            },
        )
        .await;

        let during = load.oks();
        let new = upgrade(&how, &mut old).await;
        let after = load.oks();
        assert!(
            after.iter().zip(&during).all(|(a, d)| a > d),
            "round {round}: every client got answers during the upgrade: {during:?} -> {after:?}"
        );
        let reply = slow
            .await
            .expect("the slow request's task")
            .expect("the slow request survives the upgrade");
        assert_eq!(reply.status, 200, "{}", reply.describe());

        // The old process is gone: the new one answers everything from here on.
        load.wait_more(&after, 20, "after the upgrade").await;
        writing.store(false, Ordering::SeqCst);
        let written = writer
            .await
            .expect("the API writer's task")
            .unwrap_or_else(|e| panic!("round {round}: an API call failed: {e}"));
        assert_no_failure(load).await;
        assert!(written > 0, "round {round}: the API writer wrote nothing");
        assert_eq!(
            tag_n(&api).await,
            written,
            "round {round}: the last write acknowledged is the one in force"
        );
        old = new;
    }
    old.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_elb_default_health_check_serves_from_the_first_healthz_200() {
    let (instances, _) = backends_on_one_port(2).await;
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let _ca = seed(dir.path(), &instances);
    let how = serve(dir.path(), bind);
    let mut old = how.clone().spawn_healthy().await;
    let http = SocketAddr::new(bind, HTTP_PORT);
    wait_in_service(http).await;

    // One client, a new connection per request, through SIGTERM and a new start.
    let ready_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let running = Arc::new(AtomicBool::new(true));
    let tally = Arc::new(Tally::default());
    let client = {
        let (ready_at, running, tally) = (
            Arc::clone(&ready_at),
            Arc::clone(&running),
            Arc::clone(&tally),
        );
        tokio::spawn(async move {
            let mut counted = 0u64;
            while running.load(Ordering::SeqCst) {
                let started = Instant::now();
                let result = http_get(http, "/", &[]).await;
                // During the gap between the processes connections are refused: a restart is
                // not an upgrade. Only requests sent once the new node said it is ready count.
                let ready = *ready_at.lock().unwrap();
                if ready.is_some_and(|at| started >= at) {
                    tally.count(started, result.map_err(|e| e.to_string()));
                    counted += 1;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            counted
        })
    };
    old.stop().await;
    let mut new = how.spawn_healthy().await;
    *ready_at.lock().unwrap() = Some(Instant::now());
    let since = tally.ok();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tally.ok() < since + 200 && tally.failures.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "too few answers after the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.store(false, Ordering::SeqCst);
    let counted = client.await.expect("the client task");
    let failures = tally.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {counted} requests failed after /healthz said 200; first: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    let log = new.stderr_now();
    assert!(
        log.contains("health of instances carried over"),
        "the new node should start from the saved health; stderr:\n{log}"
    );
    new.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_the_store_and_kills_nothing() {
    let (instances, _) = backends_on_one_port(1).await;
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let _ca = seed(dir.path(), &instances);
    let mut node = serve(dir.path(), bind).spawn_healthy().await;
    let http = SocketAddr::new(bind, HTTP_PORT);
    wait_in_service(http).await;
    let before = node.wait_healthy().await;

    // Nothing changed: the node says so and serves on.
    node.signal(libc::SIGHUP);
    node.wait_stderr("SIGHUP: re-read the store: unchanged")
        .await;
    assert!(node.try_status().is_none(), "SIGHUP killed the node");
    assert_eq!(node.wait_healthy().await, before);

    // Another process writes the database (an offline tool): a new listener on 8081.
    let revision = {
        let store = Store::open(dir.path()).expect("open the store beside the node");
        let port = instances[0].addr().port();
        store
            .update(|s| {
                s.create_listeners(
                    "app",
                    vec![Listener::new(Protocol::Http, 8081, Protocol::Http, port)],
                )
            })
            .expect("add a listener");
        store.snapshot().revision
    };
    node.signal(libc::SIGHUP);
    node.wait_stderr(&format!("SIGHUP: re-read the store: revision {revision}"))
        .await;
    node.wait_healthz_until(&format!("revision {revision}"), |r| {
        r.status == 200 && r.text() == format!("ok revision {revision}\n")
    })
    .await;
    wait_in_service(SocketAddr::new(bind, 8081)).await;
    let reply = http_get(http, "/", &[]).await.expect("the first listener");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert!(node.try_status().is_none(), "SIGHUP killed the node");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_that_cannot_be_ready_or_dies_leaves_the_old_one_serving() {
    let (instances, _) = backends_on_one_port(1).await;
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let ca = seed(dir.path(), &instances);
    let how = serve(dir.path(), bind);
    let mut old = how.clone().spawn_healthy().await;
    let mut how = how;
    how.api = old.api.expect("an API address");
    wait_in_service(SocketAddr::new(bind, HTTP_PORT)).await;
    let api = sdk(&old);

    // The new process also listens on a second address, where 8080 is taken: it cannot serve
    // as well as the old one, gives up after its --takeover-timeout and exits non-zero. It
    // accepted on the shared sockets meanwhile: what it accepted, it answers before leaving.
    let other = bind_address();
    let _taken = std::net::TcpListener::bind(SocketAddr::new(other, HTTP_PORT))
        .expect("hold 8080 on the second address");
    let load = Load::start(bind, &ca);
    let before = load.oks();
    load.wait_more(&before, 20, "before the attempt").await;
    let mut failed = how
        .clone()
        .args(&["--bind", &other.to_string(), "--takeover-timeout", "2"])
        .spawn();
    failed.wait_stderr("taking over from pid").await;
    let status = failed.wait_exit(Duration::from_secs(20)).await;
    let log = failed.stderr.read_to_end(Duration::from_secs(5)).await;
    assert!(
        !status.success(),
        "a failed take-over exits non-zero; stderr:\n{log}"
    );
    assert!(
        log.contains("could not take over"),
        "it says why; stderr:\n{log}"
    );
    old.wait_stderr("did not take over").await;
    let after = load.oks();
    load.wait_more(&after, 20, "after the failed attempt").await;
    assert_no_failure(load).await;
    assert!(old.try_status().is_none(), "the old process carries on");
    // The old process takes API calls again.
    tag_write(&api, "after the failed attempt").await;

    // A new process killed before it is ready (here: it cannot be): the old one carries on.
    let mut killed = how.clone().args(&["--bind", &other.to_string()]).spawn();
    killed.wait_stderr("taking over from pid").await;
    drop(killed);
    eventually("the old process notices", Duration::from_secs(10), || {
        let seen = old.stderr_now().matches("did not take over").count() >= 2;
        async move { seen }
    })
    .await;
    tag_write(&api, "after the killed attempt").await;
    wait_in_service(SocketAddr::new(bind, HTTP_PORT)).await;

    // And a real upgrade still works after both.
    let mut new = upgrade(&how, &mut old).await;
    tag_write(&api, "after the upgrade").await;
    new.stop().await;
}

/// One API write that must succeed.
async fn tag_write(api: &elb::Client, when: &str) {
    let tag = elb::types::Tag::builder()
        .key("when")
        .value(when.replace(' ', "-"))
        .build()
        .expect("a tag");
    api.add_tags()
        .load_balancer_names("app")
        .tags(tag)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AddTags {when}: {}", elb::error::DisplayErrorContext(&e)));
}

/// A process this test did not spawn (started by a node on SIGUSR2): SIGKILLed when dropped if
/// it is still there, so that a failing test leaves nothing behind.
struct Orphan(i32);

impl Orphan {
    fn signal(&self, signal: i32) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) with a valid signal; the pid is the node's successor, which this test
        // waits for before the pid could be reused (see `gone`).
        let rc = unsafe { libc::kill(self.0, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Whether it has exited (a zombie waiting for init to reap it counts).
    fn gone(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.0)) {
            // The state follows the command name in parentheses.
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
            Err(_) => true,
        }
    }
}

impl Drop for Orphan {
    fn drop(&mut self) {
        if !self.gone() {
            #[allow(unsafe_code)]
            // SAFETY: as in `signal`.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
            }
        }
    }
}

/// The next datagram on systemd's notification socket, as text.
async fn notification(socket: &tokio::net::UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(30), socket.recv(&mut buf))
        .await
        .expect("a notification within 30 s")
        .expect("recv on the notification socket");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr2_starts_the_binary_again_which_takes_over_and_tells_systemd() {
    let (instances, _) = backends_on_one_port(2).await;
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let ca = seed(dir.path(), &instances);
    // systemd's side of Type=notify: a datagram socket named by NOTIFY_SOCKET.
    let systemd = tempfile::tempdir().unwrap();
    let notify_path = systemd.path().join("notify");
    let notifications = tokio::net::UnixDatagram::bind(&notify_path).expect("bind the socket");
    let mut old = serve(dir.path(), bind)
        .env("NOTIFY_SOCKET", notify_path.to_str().expect("a UTF-8 path"))
        .spawn_healthy()
        .await;
    let api = old.api.expect("an API address");
    assert_eq!(notification(&notifications).await, "READY=1");
    wait_in_service(SocketAddr::new(bind, HTTP_PORT)).await;

    let load = Load::start(bind, &ca);
    let before = load.oks();
    load.wait_more(&before, 20, "before SIGUSR2").await;

    // What `systemctl reload` does with ExecReload=/bin/kill -USR2 $MAINPID.
    old.signal(libc::SIGUSR2);
    let line = old.wait_stderr("SIGUSR2: started pid").await;
    let pid: i32 = line
        .split("started pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    let new = Orphan(pid);
    // Both say which process is the service now, before the old one exits.
    let mut said = vec![
        notification(&notifications).await,
        notification(&notifications).await,
    ];
    said.sort();
    assert_eq!(
        said,
        vec![format!("MAINPID={pid}"), format!("MAINPID={pid}\nREADY=1")]
    );
    let status = old.wait_exit(HANDOVER_EXIT).await;
    assert!(
        status.success(),
        "the old process exited with {status}; stderr:\n{}",
        old.stderr_now()
    );
    // The new process writes where the old one did.
    old.wait_stderr(&format!("handed over to a new process (pid {pid})"))
        .await;
    old.wait_stderr("took over from pid").await;
    let health = http_get(api, "/healthz", &[]).await.expect("/healthz");
    assert_eq!(health.status, 200, "{}", health.describe());

    let after = load.oks();
    load.wait_more(&after, 20, "after the take-over").await;
    assert_no_failure(load).await;

    new.signal(libc::SIGTERM);
    eventually("the new process exits", Duration::from_secs(15), || {
        let gone = new.gone();
        async move { gone }
    })
    .await;
    assert_eq!(notification(&notifications).await, "STOPPING=1");
}
