//! `fulcrum serve` as a user runs it: the real binary in a child process, real sockets on
//! loopback. Each test has its own data dir, API port and listener address, so they run side by
//! side.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{bind_address, wait_in_service, Fulcrum, Serve, EXIT_TIMEOUT};
use fulcrum_store::Store;
use fulcrum_testkit::{
    certs_from_pem, client_tls_config, eventually, http_get, https_get, Backend, Conn,
};
use tokio::time::Instant;

/// The demo's fixed listener ports.
const DEMO_HTTP: u16 = 8080;
const DEMO_HTTPS: u16 = 8443;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Starts `serve --demo` and waits for the `curl` line it prints once both instances are in
/// service; returns the node and that line.
async fn start_demo(dir: &Path, bind: IpAddr) -> (Fulcrum, String) {
    let mut node = Serve::new(dir, bind).demo().spawn();
    let curl = node
        .wait_stdout("the demo's curl line", |l| l.contains("curl "))
        .await;
    (node, curl)
}

/// Writes a load balancer `app` with an HTTP listener on `port` forwarding to `instance`
/// (registered by its literal IP address), health-checked on `HTTP:<instance port>/health`,
/// straight into the store of `dir`, as a node would find it on start.
fn seed_state(dir: &Path, port: u16, instance: SocketAddr) {
    let store = Store::open(dir).expect("open the store");
    store
        .update(|state| common::add_http_lb(state, "app", port, instance))
        .expect("write the state");
}

/// Checks what the demo instance reports about a request that came through `port`.
fn check_demo_reply(reply: &fulcrum_testkit::Reply, proto: &str, port: u16) -> String {
    assert_eq!(reply.status, 200, "{}", reply.describe());
    let instance = reply.instance();
    assert!(
        instance == "demo-1" || instance == "demo-2",
        "unexpected instance {instance}: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("x-forwarded-proto"),
        Some(proto),
        "{}",
        reply.describe()
    );
    let port = port.to_string();
    assert_eq!(
        reply.header("x-forwarded-port"),
        Some(port.as_str()),
        "{}",
        reply.describe()
    );
    let xff = reply.header("x-forwarded-for").unwrap_or_default();
    assert!(
        xff.ends_with("127.0.0.1"),
        "x-forwarded-for should end with the client's address: {}",
        reply.describe()
    );
    instance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_https_http_and_h2_from_both_instances() {
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let (mut node, curl) = start_demo(dir.path(), bind).await;

    let cert_path = dir.path().join("demo-cert.pem");
    let expected = format!("--cacert {}", cert_path.display());
    assert!(
        curl.contains(&expected),
        "curl line {curl:?} lacks {expected:?}"
    );
    assert!(
        curl.contains("https://localhost:8443/"),
        "curl line {curl:?} lacks the URL"
    );
    let resolve = format!("--resolve localhost:8443:{bind}");
    assert!(
        curl.contains(&resolve),
        "curl line {curl:?} lacks {resolve:?}"
    );
    node.wait_healthy().await;

    let cert_pem = std::fs::read_to_string(&cert_path).expect("read demo-cert.pem");
    let https = SocketAddr::new(bind, DEMO_HTTPS);
    let http = SocketAddr::new(bind, DEMO_HTTP);

    // HTTPS over HTTP/1.1, a new connection each time: the instances take turns.
    let h1 = client_tls_config(&cert_pem, &[b"http/1.1"]);
    let mut seen = BTreeSet::new();
    for i in 0..4 {
        let reply = https_get(https, "localhost", h1.clone(), &format!("/tls/{i}"), &[])
            .await
            .expect("HTTPS GET through the demo");
        assert_eq!(reply.version, http::Version::HTTP_11);
        assert_eq!(
            reply.peer_cert_der.as_deref(),
            Some(certs_from_pem(&cert_pem)[0].as_ref()),
            "the balancer serves the demo certificate"
        );
        seen.insert(check_demo_reply(&reply, "https", DEMO_HTTPS));
    }
    assert_eq!(
        seen.len(),
        2,
        "both instances answer on :8443, saw {seen:?}"
    );

    // Plain HTTP on :8080, with its own round-robin cursor.
    let mut seen = BTreeSet::new();
    for i in 0..4 {
        let reply = http_get(http, &format!("/plain/{i}"), &[])
            .await
            .expect("HTTP GET through the demo");
        seen.insert(check_demo_reply(&reply, "http", DEMO_HTTP));
    }
    assert_eq!(
        seen.len(),
        2,
        "both instances answer on :8080, saw {seen:?}"
    );

    // h2, chosen by ALPN; several streams on one connection still alternate.
    let h2 = client_tls_config(&cert_pem, &[b"h2", b"http/1.1"]);
    let mut conn = Conn::https(https, "localhost", h2)
        .await
        .expect("h2 connect");
    assert_eq!(conn.alpn(), Some(&b"h2"[..]));
    assert!(conn.is_h2());
    let mut seen = BTreeSet::new();
    for i in 0..4 {
        let reply = conn.get(&format!("/h2/{i}"), &[]).await.expect("h2 GET");
        assert_eq!(reply.version, http::Version::HTTP_2, "{}", reply.describe());
        seen.insert(check_demo_reply(&reply, "https", DEMO_HTTPS));
    }
    assert_eq!(seen.len(), 2, "both instances answer over h2, saw {seen:?}");
    drop(conn);

    node.stop().await;
}

/// Parses `DIR/credentials`: (profile line, access key id, secret).
fn read_credentials(path: &Path) -> (String, String, String) {
    let text = std::fs::read_to_string(path).expect("read the credentials file");
    let mut lines = text.lines();
    let profile = lines.next().unwrap_or_default().trim().to_owned();
    let value = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{key} missing from the credentials file:\n{text}"))
    };
    (
        profile,
        value("aws_access_key_id"),
        value("aws_secret_access_key"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_writes_admin_credentials_once_and_never_prints_the_secret() {
    let tmp = tempfile::tempdir().unwrap();
    // A data dir that does not exist yet, as `./fulcrum-data` on a first start.
    let dir = tmp.path().join("data");
    let bind = bind_address();
    let path = dir.join("credentials");

    let mut node = Serve::new(&dir, bind).spawn();
    node.wait_healthy().await;
    assert_eq!(
        mode(&path),
        0o600,
        "credentials must be readable by the owner only"
    );
    let (profile, id, secret) = read_credentials(&path);
    assert_eq!(profile, "[fulcrum]");
    assert!(
        id.len() == 20
            && id.starts_with("AKIA")
            && id[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "access key id {id:?} should be AKIA and 16 uppercase letters or digits"
    );
    assert!(
        secret.len() >= 40,
        "secret too short: {} chars",
        secret.len()
    );
    node.stop().await;
    let stdout = node.stdout.read_to_end(EXIT_TIMEOUT).await;
    let stderr = node.stderr.read_to_end(EXIT_TIMEOUT).await;
    assert!(
        stdout.contains(&path.display().to_string()),
        "stdout should say where the credentials are:\n{stdout}"
    );
    assert!(
        !stdout.contains(&secret),
        "stdout shows the secret:\n{stdout}"
    );
    assert!(
        !stderr.contains(&secret),
        "the log shows the secret:\n{stderr}"
    );
    let first = std::fs::read_to_string(&path).unwrap();

    // A second start on the same data dir keeps the key it has.
    let mut again = Serve::new(&dir, bind).spawn();
    again.wait_healthy().await;
    again.stop().await;
    let stdout = again.stdout.read_to_end(EXIT_TIMEOUT).await;
    let stderr = again.stderr.read_to_end(EXIT_TIMEOUT).await;
    let (_, id_again, secret_again) = read_credentials(&path);
    assert_eq!(id_again, id, "the admin key was replaced on restart");
    assert_eq!(secret_again, secret);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    assert_eq!(mode(&path), 0o600);
    assert!(
        !stdout.contains(&secret),
        "stdout shows the secret:\n{stdout}"
    );
    assert!(
        !stderr.contains(&secret),
        "the log shows the secret:\n{stderr}"
    );
}

/// Every file in `dir` (not recursive) with its contents.
fn data_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("list the data dir")
        .map(|e| e.expect("a dir entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read a data file"))
        })
        .collect();
    files.sort();
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checks the data dir: the master key for its owner only, and no private key in plain text
/// anywhere, while the (public) certificate body is there, which shows the files were read.
fn check_keys_at_rest(dir: &Path) {
    assert_eq!(mode(&dir.join("master.key")), 0o600);
    assert_eq!(
        mode(dir),
        0o700,
        "a data dir fulcrum creates is for its owner only"
    );
    let files = data_files(dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"fulcrum.db"), "files: {names:?}");
    for (name, bytes) in &files {
        assert!(
            !contains(bytes, b"PRIVATE KEY"),
            "{name} holds a private key in plain text"
        );
    }
    let db: Vec<u8> = files
        .iter()
        .filter(|(n, _)| n.starts_with("fulcrum.db"))
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    assert!(
        contains(&db, b"BEGIN CERTIFICATE"),
        "the demo certificate should be in the store ({names:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_keys_are_not_stored_in_plain_text() {
    let tmp = tempfile::tempdir().unwrap();
    // A data dir that fulcrum creates itself (an existing one keeps its mode).
    let dir = tmp.path().join("data");
    let bind = bind_address();
    let (mut node, _) = start_demo(&dir, bind).await;
    node.wait_healthy().await;
    check_keys_at_rest(&dir);
    node.stop().await;
    check_keys_at_rest(&dir);
    let stderr = node.stderr.read_to_end(EXIT_TIMEOUT).await;
    let stdout = node.stdout.read_to_end(EXIT_TIMEOUT).await;
    assert!(
        !stderr.contains("PRIVATE KEY"),
        "the log shows a key:\n{stderr}"
    );
    assert!(
        !stdout.contains("PRIVATE KEY"),
        "stdout shows a key:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let (mut node, _) = start_demo(dir.path(), bind).await;
    let before = node.wait_healthy().await;
    assert!(before.starts_with("ok revision "), "{before:?}");
    let revision: u64 = before["ok revision ".len()..].trim().parse().unwrap();
    assert!(revision > 0, "the demo committed a revision: {before:?}");
    let cert_pem = std::fs::read_to_string(dir.path().join("demo-cert.pem")).unwrap();
    node.stop().await;

    // Without --demo: the instances are gone, the load balancer and its certificate are not.
    let mut node = Serve::new(dir.path(), bind).spawn();
    let after = node.wait_healthy().await;
    assert_eq!(
        after, before,
        "the restarted node should apply the same revision"
    );

    // The instances' health was carried over; their first checks (within about a second)
    // find them gone.
    let http = SocketAddr::new(bind, DEMO_HTTP);
    eventually(
        "503: no instance in service",
        Duration::from_secs(5),
        || async move {
            http_get(http, "/", &[])
                .await
                .is_ok_and(|r| r.status == 503)
        },
    )
    .await;
    let reply = http_get(http, "/", &[])
        .await
        .expect("the HTTP listener is back");
    assert!(reply.text().starts_with("503"), "{}", reply.describe());

    // The TLS listener is back with the demo certificate, whose sealed key was unsealed.
    let tls = client_tls_config(&cert_pem, &[b"http/1.1"]);
    let reply = https_get(
        SocketAddr::new(bind, DEMO_HTTPS),
        "localhost",
        tls,
        "/",
        &[],
    )
    .await
    .expect("the HTTPS listener is back");
    assert_eq!(reply.status, 503, "{}", reply.describe());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_and_refuses_new_connections() {
    let backend = Backend::start("slow").await;
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let lb = SocketAddr::new(bind, 8080);
    seed_state(dir.path(), lb.port(), backend.addr());

    let mut node = Serve::new(dir.path(), bind).spawn();
    node.wait_healthy().await;
    wait_in_service(lb).await;

    let slow = tokio::spawn(async move { http_get(lb, "/delay/3000", &[]).await });
    let b = backend.clone();
    eventually(
        "the slow request at the instance",
        Duration::from_secs(5),
        || {
            let b = b.clone();
            async move { b.in_flight() == 1 }
        },
    )
    .await;
    let sent = Instant::now();
    node.sigterm();

    // The listener closes at once, while the request is still being served.
    eventually(
        "new connections refused after SIGTERM",
        Duration::from_secs(2),
        || async move { tokio::net::TcpStream::connect(lb).await.is_err() },
    )
    .await;
    assert_eq!(
        backend.in_flight(),
        1,
        "the listener should close before the request ends"
    );
    assert!(
        node.try_status().is_none(),
        "fulcrum exited before the drain"
    );

    let reply = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("the in-flight request ends")
        .expect("the request task")
        .expect("the in-flight request completes through the drain");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(reply.instance(), "slow");

    let status = node.wait_exit(EXIT_TIMEOUT).await;
    assert!(status.success(), "exit status after the drain: {status}");
    assert!(
        sent.elapsed() < Duration::from_secs(8),
        "exited {:?} after SIGTERM",
        sent.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_bounds_the_drain() {
    let backend = Backend::start("stuck").await;
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let lb = SocketAddr::new(bind, 8080);
    seed_state(dir.path(), lb.port(), backend.addr());

    let mut node = Serve::new(dir.path(), bind)
        .args(&["--drain-timeout", "1"])
        .spawn();
    node.wait_healthy().await;
    wait_in_service(lb).await;

    let slow = tokio::spawn(async move { http_get(lb, "/delay/5000", &[]).await });
    let b = backend.clone();
    eventually(
        "the slow request at the instance",
        Duration::from_secs(5),
        || {
            let b = b.clone();
            async move { b.in_flight() == 1 }
        },
    )
    .await;
    let sent = Instant::now();
    node.sigterm();
    let status = node.wait_exit(Duration::from_secs(4)).await;
    let took = sent.elapsed();
    assert!(
        status.success(),
        "exit status after the drain deadline: {status}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the 1 s drain deadline"
    );
    assert!(took < Duration::from_secs(3), "exited after {took:?}");

    // The request that outlived the deadline was cut, not answered.
    let cut = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("the cut request ends")
        .expect("the request task");
    assert!(
        cut.as_ref().map_or(true, |r| r.status != 200),
        "a request cut by the drain deadline got {:?}",
        cut.map(|r| r.describe())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_a_listener_that_cannot_bind() {
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    // Someone else holds the port.
    let squatter = std::net::TcpListener::bind((bind, 0)).expect("bind the squatter");
    let port = squatter.local_addr().unwrap().port();
    seed_state(dir.path(), port, fulcrum_testkit::closed_port());

    let mut node = Serve::new(dir.path(), bind).spawn();
    let reply = node
        .wait_healthz_until("the state applied", |r| {
            !r.text().contains("state not applied")
        })
        .await;
    assert_eq!(reply.status, 503, "{}", reply.describe());
    let body = reply.text();
    let expected = format!("listener {port}: cannot listen on {bind}:{port}");
    assert!(body.contains(&expected), "{body:?} lacks {expected:?}");
    assert!(
        body.to_ascii_lowercase().contains("in use"),
        "{body:?} should say the address is in use"
    );
    node.stop().await;
    drop(squatter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_address_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut node = Fulcrum::spawn(&[
        OsStr::new("serve"),
        OsStr::new("--data-dir"),
        data_dir.as_os_str(),
        OsStr::new("--api"),
        OsStr::new("nonsense"),
    ]);
    let status = node.wait_exit(EXIT_TIMEOUT).await;
    let stderr = node.stderr.read_to_end(EXIT_TIMEOUT).await;
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains("--api") && stderr.contains("nonsense"),
        "the message should name the flag and the value:\n{stderr}"
    );
    assert!(!data_dir.exists(), "nothing is created on a usage error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_that_is_a_file_is_refused_naming_it() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().display().to_string();
    let api = fulcrum_testkit::closed_port().to_string();
    let bind = bind_address().to_string();
    let mut node = Fulcrum::spawn(&["serve", "--data-dir", &path, "--api", &api, "--bind", &bind]);
    let status = node.wait_exit(EXIT_TIMEOUT).await;
    let stderr = node.stderr.read_to_end(EXIT_TIMEOUT).await;
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains(&path),
        "the message should name {path}:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "a bad data dir is an error, not a crash:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_address_in_use_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = taken.local_addr().unwrap().to_string();
    let data_dir = dir.path().join("data").display().to_string();
    let bind = bind_address().to_string();
    let mut node = Fulcrum::spawn(&[
        "serve",
        "--data-dir",
        &data_dir,
        "--api",
        &api,
        "--bind",
        &bind,
    ]);
    let status = node.wait_exit(EXIT_TIMEOUT).await;
    let stderr = node.stderr.read_to_end(EXIT_TIMEOUT).await;
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains(&format!("cannot listen on the API address {api}")),
        "the message should name {api}:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn store_error_names_the_os_error_once() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().display().to_string();
    let api = fulcrum_testkit::closed_port().to_string();
    let bind = bind_address().to_string();
    let mut node = Fulcrum::spawn(&["serve", "--data-dir", &path, "--api", &api, "--bind", &bind]);
    let status = node.wait_exit(EXIT_TIMEOUT).await;
    let stderr = node.stderr.read_to_end(EXIT_TIMEOUT).await;
    assert!(!status.success(), "exit status {status}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("fulcrum: "))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert_eq!(
        line.matches("(os error").count(),
        1,
        "the cause should be given once: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn sigterm_while_the_demo_is_starting_still_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    // At the real health-check pace, the demo instances need about 5 s to come in service; the
    // listeners are open long before.
    let mut node = Serve::new(dir.path(), bind).demo().time_scale(1).spawn();
    node.wait_healthy().await;
    let http = SocketAddr::new(bind, DEMO_HTTP);
    eventually(
        "the demo listener open",
        Duration::from_secs(10),
        || async move { tokio::net::TcpStream::connect(http).await.is_ok() },
    )
    .await;
    assert!(
        !node.stdout.text().contains("curl "),
        "the demo should still be starting"
    );
    node.sigterm();
    let status = node.wait_exit(EXIT_TIMEOUT).await;
    assert!(
        status.success(),
        "a node with open listeners should drain and exit 0 on SIGTERM, got {status}"
    );
}

/// SIGTERMs `node` while `client` holds a connection with no request in flight: the node must
/// exit 0 within 3 s rather than wait for that client.
async fn assert_exits_promptly_despite(node: &mut Fulcrum, client: tokio::net::TcpStream) {
    let limit = Duration::from_secs(3);
    let sent = Instant::now();
    node.sigterm();
    let status = node.wait_exit(limit).await;
    drop(client);
    assert!(status.success(), "exit status {status}");
    assert!(
        sent.elapsed() < limit,
        "exited {:?} after SIGTERM",
        sent.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_for_a_silent_plain_http_client() {
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let (mut node, _) = start_demo(dir.path(), bind).await;
    let silent = tokio::net::TcpStream::connect(SocketAddr::new(bind, DEMO_HTTP))
        .await
        .expect("connect");
    assert_exits_promptly_despite(&mut node, silent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn sigterm_does_not_wait_for_a_half_sent_request_head() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let (mut node, _) = start_demo(dir.path(), bind).await;
    let mut slow = tokio::net::TcpStream::connect(SocketAddr::new(bind, DEMO_HTTP))
        .await
        .expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("send half a request head");
    assert_exits_promptly_despite(&mut node, slow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn sigterm_does_not_wait_for_a_silent_tls_client() {
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let (mut node, _) = start_demo(dir.path(), bind).await;
    let silent = tokio::net::TcpStream::connect(SocketAddr::new(bind, DEMO_HTTPS))
        .await
        .expect("connect");
    assert_exits_promptly_despite(&mut node, silent).await;
}

/// Waits (bounded) for the peer to close a raw connection; true if it did within `limit`.
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_cuts_slow_heads_and_refuses_connections_over_its_limit() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut node = Serve::new(dir.path(), bind_address())
        .args(&["--header-read-timeout", "1", "--api-max-connections", "2"])
        .spawn_healthy()
        .await;
    let api = node.api.unwrap();
    // Two clients that start a request head and never finish it hold both connections. (The
    // node may still be closing the connections of its readiness checks: a refused attempt is
    // tried again.)
    let mut slow = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the API never took two connections"
        );
        let Ok(mut tcp) = tokio::net::TcpStream::connect(api).await else {
            continue;
        };
        if tcp
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: api\r\n")
            .await
            .is_ok()
            && !closed_within(&mut tcp, Duration::from_millis(100)).await
        {
            slow.push(tcp);
        }
    }
    // A third is refused at once (the reset may even come before `connect` returns).
    if let Ok(mut third) = tokio::net::TcpStream::connect(api).await {
        let _ = third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
            .await;
        assert!(
            closed_within(&mut third, Duration::from_millis(900)).await,
            "a connection over the API's limit was not refused"
        );
    }
    // The slow heads are cut by the header read timeout, and the API serves again.
    let started = Instant::now();
    for tcp in &mut slow {
        assert!(
            closed_within(tcp, Duration::from_secs(4)).await,
            "a slow API head was never cut"
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(500));
    let reply = node.healthz().await.expect("the API answers again");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    node.stop().await;
}

/// Runs the `fulcrum` CLI; returns its exit code and stdout (stderr on failure).
fn fulcrum_cli(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env_remove("FULCRUM_ENDPOINT")
        .env_remove("FULCRUM_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the fulcrum CLI");
    let text = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    (out.status.code(), text)
}

fn field_of(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_keys_from_the_cli_and_the_offline_way_back_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Serve::new(dir.path(), bind_address()).spawn_healthy().await;
    let endpoint = format!("http://{}", node.api.unwrap());
    let credentials = dir.path().join("credentials");
    let creds = credentials.to_str().unwrap();
    let (code, out) = fulcrum_cli(&[
        "key",
        "create",
        "--scope",
        "read-only",
        "--endpoint",
        &endpoint,
        "--credentials",
        creds,
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(field_of(&out, "Scope"), "read-only");
    let (code, listed) = fulcrum_cli(&[
        "key",
        "list",
        "--endpoint",
        &endpoint,
        "--credentials",
        creds,
    ]);
    assert_eq!(code, Some(0), "{listed}");
    assert!(
        listed.contains("read-only") && listed.contains("admin"),
        "{listed}"
    );

    // Locked out (say the credentials file is lost): a new admin key straight in the store, on
    // the node, while it runs; the API takes it at once.
    let (code, out) = fulcrum_cli(&["key", "create", "--data-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(field_of(&out, "Scope"), "admin");
    let other = tempfile::tempdir().unwrap();
    let file = other.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[fulcrum]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = us-east-1\n",
            field_of(&out, "AccessKeyId"),
            field_of(&out, "SecretAccessKey")
        ),
    )
    .unwrap();
    let (code, listed) = fulcrum_cli(&[
        "key",
        "list",
        "--endpoint",
        &endpoint,
        "--credentials",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{listed}");
    assert_eq!(listed.matches("admin").count(), 2, "{listed}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_api_off_loopback_is_refused_saying_why_and_how() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut node = Fulcrum::spawn(&[
        OsStr::new("serve"),
        OsStr::new("--data-dir"),
        data_dir.as_os_str(),
        OsStr::new("--api"),
        OsStr::new("0.0.0.0:0"),
        OsStr::new("--api-tls"),
        OsStr::new("off"),
    ]);
    let status = node.wait_exit(EXIT_TIMEOUT).await;
    let stderr = node.stderr.read_to_end(EXIT_TIMEOUT).await;
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains("refusing plain HTTP")
            && stderr.contains("private keys")
            && stderr.contains("--api-tls-cert"),
        "the message should say why and how:\n{stderr}"
    );
    assert!(!data_dir.join("fulcrum.db").exists(), "nothing started");
}

/// `--dns-name` is what CreateLoadBalancer and DescribeLoadBalancers report as DNSName, with
/// `{name}` standing for the load balancer's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_name_is_what_the_operator_configures() {
    let dir = tempfile::tempdir().unwrap();
    let node = Serve::new(dir.path(), bind_address())
        .args(&["--dns-name", "{name}.lb.example.test"])
        .spawn_healthy()
        .await;
    let key = node.credentials();
    let key = (key.0.as_str(), key.1.as_str());
    let api = node.api.unwrap();
    let created = common::signed_call(
        api,
        key,
        "elasticloadbalancing",
        &[
            ("Action", "CreateLoadBalancer"),
            ("Version", "2012-06-01"),
            ("LoadBalancerName", "web"),
            ("Listeners.member.1.Protocol", "HTTP"),
            ("Listeners.member.1.LoadBalancerPort", "18080"),
            ("Listeners.member.1.InstancePort", "80"),
            ("AvailabilityZones.member.1", "us-east-1a"),
        ],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert!(
        created
            .text()
            .contains("<DNSName>web.lb.example.test</DNSName>"),
        "{}",
        created.text()
    );
    let described = common::signed_call(
        api,
        key,
        "elasticloadbalancing",
        &[
            ("Action", "DescribeLoadBalancers"),
            ("Version", "2012-06-01"),
        ],
    )
    .await;
    assert!(
        described
            .text()
            .contains("<DNSName>web.lb.example.test</DNSName>"),
        "{}",
        described.text()
    );
}
