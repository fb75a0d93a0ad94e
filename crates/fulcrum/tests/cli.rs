//! The `fulcrum` CLI as an operator runs it: a real `fulcrum serve` child and the CLI binary in
//! child processes, signing with the credentials file the node wrote. Each test has its own data
//! dir, API port and listener address.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::{bind_address, Fulcrum, Serve};
use fulcrum_testkit::{client_tls_config, https_get, Backend, TestCa};
use serde_json::Value;
use tokio::time::Instant;

/// Health checks run this many times faster than configured.
const TIME_SCALE: u32 = 20;
/// Upper bound for registered instances to come in service.
const IN_SERVICE_TIMEOUT: Duration = Duration::from_secs(30);
const ARN_PREFIX: &str = "arn:aws:iam::000000000000:server-certificate/";

/// The CLI pointed at one node, with the node's credentials file. Remembers everything the CLI
/// printed, so that a test can check that no private key ever showed.
struct Cli {
    endpoint: String,
    credentials: PathBuf,
    printed: Mutex<Vec<String>>,
}

/// A finished CLI run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn new(node: &Fulcrum) -> Cli {
        let dir = node.data_dir.as_ref().expect("a node started with Serve");
        Cli {
            endpoint: format!("http://{}", node.api.expect("an API address")),
            credentials: dir.join("credentials"),
            printed: Mutex::new(Vec::new()),
        }
    }

    /// Runs `fulcrum ARGS --endpoint .. --credentials ..` with `env` set and no AWS_* or
    /// FULCRUM_* variables from the test's own environment.
    async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fulcrum"));
        cmd.args(args)
            .arg("--endpoint")
            .arg(&self.endpoint)
            .arg("--credentials")
            .arg(&self.credentials)
            .stdin(Stdio::null());
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "AWS_SHARED_CREDENTIALS_FILE",
            "FULCRUM_ENDPOINT",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        // The CLI blocks this thread while it runs; the backends live on the runtime's others.
        let out: Output = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join the CLI runner")
            .expect("run the fulcrum CLI");
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut printed = self.printed.lock().unwrap();
        printed.push(format!(
            "$ fulcrum {}\n{}{}",
            args.join(" "),
            run.stdout,
            run.stderr
        ));
        run
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[]).await
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args).await;
        assert_eq!(
            run.code,
            Some(0),
            "fulcrum {args:?} failed:\nstdout:\n{}stderr:\n{}",
            run.stdout,
            run.stderr
        );
        run.stdout
    }

    /// Runs a command with `--output json`; returns the document it printed.
    async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let out = self.ok(&args).await;
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{out}"))
    }

    /// Runs a command that the API must refuse with `code`; returns its stderr.
    async fn fails_with(&self, args: &[&str], code: &str) -> String {
        let run = self.run(args).await;
        assert_eq!(
            run.code,
            Some(1),
            "fulcrum {args:?} should have failed with {code}:\nstdout:\n{}stderr:\n{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stderr.starts_with(&format!("fulcrum: {code}: ")),
            "fulcrum {args:?}: stderr should start with 'fulcrum: {code}: ':\n{}",
            run.stderr
        );
        run.stderr
    }

    /// Fails if anything the CLI printed holds a private key.
    fn assert_no_private_key(&self) {
        for out in self.printed.lock().unwrap().iter() {
            assert!(
                !out.contains("PRIVATE KEY"),
                "a private key was printed:\n{out}"
            );
        }
    }
}

/// Starts a node and waits for its API.
async fn start(dir: &Path) -> Fulcrum {
    let mut node = Serve::new(dir, bind_address())
        .time_scale(TIME_SCALE)
        .spawn();
    node.wait_healthy().await;
    node
}

static NEXT_BLOCK: AtomicU8 = AtomicU8::new(0);

/// `n` backends named `i-web0`.. on one port, each on its own loopback address
/// (`127.2.P.(10 * k + i + 1)`, P from the process id, k per call), as instances of one load
/// balancer share the instance port.
async fn backends(n: usize) -> (Vec<Backend>, u16) {
    let k = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed);
    assert!(k < 24 && n < 10, "out of backend addresses");
    let p = (std::process::id() % 250) as u8;
    let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(127, 2, p, 10 * k + i as u8 + 1));
    let first = Backend::start_on("i-web0", SocketAddr::new(ip(0), 0))
        .await
        .expect("start a backend");
    let port = first.addr().port();
    let mut all = vec![first];
    for i in 1..n {
        let addr = SocketAddr::new(ip(i), port);
        all.push(
            Backend::start_on(&format!("i-web{i}"), addr)
                .await
                .expect("start a backend"),
        );
    }
    (all, port)
}

/// A certificate for www.example.test issued by `ca`, written to `dir`: (cert file, key file).
fn write_certificate(ca: &TestCa, dir: &Path, stem: &str) -> (String, String) {
    let (cert, key) = ca.issue(&["www.example.test"]);
    let cert_path = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    (
        cert_path.to_str().unwrap().to_owned(),
        key_path.to_str().unwrap().to_owned(),
    )
}

/// Polls `lb health --output json` until every instance of `lb` is InService.
async fn wait_in_service(cli: &Cli, lb: &str, count: usize) -> Value {
    let deadline = Instant::now() + IN_SERVICE_TIMEOUT;
    loop {
        let health = cli.json(&["lb", "health", "--name", lb]).await;
        let states = health["InstanceStates"].as_array().expect("InstanceStates");
        if states.len() == count && states.iter().all(|s| s["State"] == "InService") {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "instances of {lb} not in service within {IN_SERVICE_TIMEOUT:?}: {health:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The seed's four steps through the CLI (upload a certificate, create an HTTPS load balancer
/// naming it, configure its health check, register instances from the inventory), then HTTPS
/// traffic through the new listener, the read commands in both output forms, and the teardown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_steps_through_the_cli_serve_https() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut node = start(dir.path()).await;
    let cli = Cli::new(&node);
    let bind = node.bind.unwrap();

    let ca = TestCa::new("fulcrum CLI test CA");
    let (cert, key) = write_certificate(&ca, files.path(), "www");
    let out = cli
        .ok(&[
            "cert", "upload", "--name", "www", "--cert", &cert, "--key", &key,
        ])
        .await;
    assert!(out.contains(&format!("{ARN_PREFIX}www")), "{out}");

    let (backends, port) = backends(2).await;
    for (i, b) in backends.iter().enumerate() {
        let id = format!("i-web{i}");
        let address = b.addr().ip().to_string();
        let out = cli
            .ok(&["instance", "put", "--id", &id, "--address", &address])
            .await;
        assert!(out.contains(&id) && out.contains(&address), "{out}");
    }

    let lb_port = fulcrum_testkit::closed_port().port();
    let listener = format!("HTTPS:{lb_port}:HTTP:{port}:www");
    let out = cli
        .ok(&["lb", "create", "--name", "web", "--listener", &listener])
        .await;
    assert!(out.contains("web"), "{out}");
    let target = format!("HTTP:{port}/health");
    let out = cli
        .ok(&[
            "lb",
            "health-check",
            "--name",
            "web",
            "--target",
            &target,
            "--interval",
            "5",
            "--timeout",
            "2",
            "--healthy",
            "2",
            "--unhealthy",
            "2",
        ])
        .await;
    assert!(out.contains(&target), "{out}");
    let out = cli
        .ok(&["lb", "register", "--name", "web", "i-web0", "i-web1"])
        .await;
    assert!(out.contains("i-web0") && out.contains("i-web1"), "{out}");

    wait_in_service(&cli, "web", 2).await;
    let health = cli.ok(&["lb", "health", "--name", "web"]).await;
    assert!(health.starts_with("INSTANCE"), "{health}");
    assert_eq!(health.matches("InService").count(), 2, "{health}");

    let tls = client_tls_config(&ca.cert_pem(), &[b"http/1.1"]);
    let reply = https_get(
        SocketAddr::new(bind, lb_port),
        "www.example.test",
        tls,
        "/",
        &[],
    )
    .await
    .expect("HTTPS through the new listener");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert!(
        ["i-web0", "i-web1"].contains(&reply.instance().as_str()),
        "{}",
        reply.describe()
    );

    // Text: one block per load balancer.
    let text = cli.ok(&["lb", "describe"]).await;
    assert!(text.starts_with("web  "), "{text}");
    assert!(
        text.contains(&format!("HTTPS:{lb_port} -> HTTP:{port}")),
        "{text}"
    );
    assert!(text.contains(&format!("{ARN_PREFIX}www")), "{text}");
    assert!(text.contains("i-web0 i-web1"), "{text}");

    // JSON: the result as the API gave it, numbers as numbers.
    let doc = cli.json(&["lb", "describe", "--name", "web"]).await;
    let lb = &doc["LoadBalancerDescriptions"][0];
    assert_eq!(lb["LoadBalancerName"], "web", "{doc:#}");
    let l = &lb["ListenerDescriptions"][0]["Listener"];
    assert_eq!(l["Protocol"], "HTTPS", "{doc:#}");
    assert_eq!(l["LoadBalancerPort"], lb_port, "{doc:#}");
    assert_eq!(l["InstancePort"], port, "{doc:#}");
    assert_eq!(l["SSLCertificateId"], format!("{ARN_PREFIX}www"), "{doc:#}");
    assert_eq!(lb["HealthCheck"]["Target"], target.as_str(), "{doc:#}");
    assert_eq!(lb["HealthCheck"]["Interval"], 5, "{doc:#}");
    assert_eq!(lb["Instances"][1]["InstanceId"], "i-web1", "{doc:#}");

    let certs = cli.json(&["cert", "list"]).await;
    let m = &certs["ServerCertificateMetadataList"];
    assert_eq!(m.as_array().map(Vec::len), Some(1), "{certs:#}");
    assert_eq!(m[0]["ServerCertificateName"], "www", "{certs:#}");
    assert_eq!(m[0]["Arn"], format!("{ARN_PREFIX}www"), "{certs:#}");
    let list = cli.ok(&["cert", "list"]).await;
    assert!(list.starts_with("NAME") && list.contains("www"), "{list}");
    let show = cli.ok(&["cert", "show", "--name", "www"]).await;
    assert!(show.contains("BEGIN CERTIFICATE"), "{show}");
    let show = cli.json(&["cert", "show", "--name", "www"]).await;
    assert!(show["ServerCertificate"]["CertificateBody"]
        .as_str()
        .is_some_and(|b| b.contains("BEGIN CERTIFICATE")));

    let inventory = cli.json(&["instance", "list"]).await;
    assert_eq!(
        inventory["Instances"][0]["InstanceId"], "i-web0",
        "{inventory:#}"
    );
    assert_eq!(
        inventory["Instances"][0]["Address"],
        backends[0].addr().ip().to_string(),
        "{inventory:#}"
    );
    let health = cli.json(&["lb", "health", "--name", "web"]).await;
    assert_eq!(
        health["InstanceStates"][0]["State"], "InService",
        "{health:#}"
    );

    // Teardown, in the order the API allows.
    let out = cli
        .ok(&["lb", "deregister", "--name", "web", "i-web1"])
        .await;
    assert!(out.contains("i-web0") && !out.contains("i-web1"), "{out}");
    cli.fails_with(&["cert", "delete", "--name", "www"], "DeleteConflict")
        .await;
    cli.ok(&["lb", "delete", "--name", "web"]).await;
    assert_eq!(
        cli.ok(&["lb", "describe"]).await.trim(),
        "No load balancers."
    );
    cli.ok(&["cert", "delete", "--name", "www"]).await;
    assert_eq!(cli.ok(&["cert", "list"]).await.trim(), "No certificates.");
    cli.ok(&["instance", "delete", "--id", "i-web0"]).await;
    cli.ok(&["instance", "delete", "--id", "i-web1"]).await;
    assert_eq!(cli.ok(&["instance", "list"]).await.trim(), "No instances.");

    cli.assert_no_private_key();
    node.stop().await;
}

/// The API's refusals reach the operator as `fulcrum: Code: Message` with exit code 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_printed_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let mut node = start(dir.path()).await;
    let cli = Cli::new(&node);

    // A key of another certificate.
    let ca = TestCa::new("fulcrum CLI test CA");
    let (cert, _) = write_certificate(&ca, files.path(), "one");
    let (_, other_key) = write_certificate(&ca, files.path(), "two");
    let err = cli
        .fails_with(
            &[
                "cert", "upload", "--name", "www", "--cert", &cert, "--key", &other_key,
            ],
            "KeyPairMismatch",
        )
        .await;
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    assert_eq!(cli.ok(&["cert", "list"]).await.trim(), "No certificates.");

    cli.fails_with(
        &["lb", "describe", "--name", "nope"],
        "LoadBalancerNotFound",
    )
    .await;
    cli.fails_with(
        &[
            "lb",
            "create",
            "--name",
            "web",
            "--listener",
            "HTTPS:8443:HTTP:80:missing",
        ],
        "CertificateNotFound",
    )
    .await;

    // The admin key with a wrong secret.
    let admin = cli.json(&["key", "list"]).await;
    let admin_id = admin["AccessKeyMetadata"][0]["AccessKeyId"]
        .as_str()
        .expect("the admin key")
        .to_owned();
    cli.fails_with(
        &[
            "lb",
            "describe",
            "--access-key-id",
            &admin_id,
            "--secret-access-key",
            "not-the-secret",
        ],
        "SignatureDoesNotMatch",
    )
    .await;

    // A port nothing listens on.
    let closed = fulcrum_testkit::closed_port();
    let mut unreachable = Cli::new(&node);
    unreachable.endpoint = format!("http://{closed}");
    let run = unreachable.run(&["lb", "describe"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("fulcrum: cannot reach the fulcrum API at ")
            && run.stderr.contains(&format!("http://{closed}")),
        "{}",
        run.stderr
    );

    // No credentials anywhere.
    let mut nowhere = Cli::new(&node);
    nowhere.credentials = files.path().join("no-such-file");
    let run = nowhere.run(&["lb", "describe"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("no credentials"), "{}", run.stderr);

    cli.assert_no_private_key();
    node.stop().await;
}

/// `key create` prints a working key once; `key delete` revokes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_keys_sign_until_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(dir.path()).await;
    let cli = Cli::new(&node);

    let created = cli.json(&["key", "create"]).await;
    let id = created["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = created["AccessKey"]["SecretAccessKey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("AKIA") && secret.len() >= 20, "{created:#}");

    // The text form shows the secret too: that is what `key create` is for.
    let text = cli.ok(&["key", "create"]).await;
    assert!(text.contains("SecretAccessKey"), "{text}");

    // The new key signs, from the flags and from the environment.
    let with_key = [
        "--access-key-id",
        id.as_str(),
        "--secret-access-key",
        secret.as_str(),
    ];
    let mut args = vec!["lb", "describe"];
    args.extend(with_key);
    assert_eq!(cli.ok(&args).await.trim(), "No load balancers.");
    let mut elsewhere = Cli::new(&node);
    elsewhere.credentials = dir.path().join("no-such-file");
    let run = elsewhere
        .run_env(
            &["instance", "list"],
            &[
                ("AWS_ACCESS_KEY_ID", &id),
                ("AWS_SECRET_ACCESS_KEY", &secret),
            ],
        )
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    // Listed by id, never with a secret.
    let list = cli.ok(&["key", "list"]).await;
    assert!(list.contains(&id), "{list}");
    assert!(!list.contains(&secret), "{list}");
    let listed = cli.json(&["key", "list"]).await;
    assert_eq!(
        listed["AccessKeyMetadata"].as_array().map(Vec::len),
        Some(3)
    );
    assert!(!listed.to_string().contains(&secret), "{listed:#}");

    cli.ok(&["key", "delete", "--id", &id]).await;
    let mut args = vec!["lb", "describe"];
    args.extend(with_key);
    cli.fails_with(&args, "InvalidClientTokenId").await;
    cli.fails_with(&["key", "delete", "--id", &id], "NoSuchEntity")
        .await;

    node.stop().await;
}

#[tokio::test]
async fn a_certificate_rotates_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let cli = Cli::new(&node);
    let ca = TestCa::new("fulcrum CLI rotation CA");
    let (old_cert, old_key) = write_certificate(&ca, files.path(), "www");
    let (new_cert, new_key) = write_certificate(&ca, files.path(), "www-2");
    cli.ok(&[
        "cert", "upload", "--name", "www", "--cert", &old_cert, "--key", &old_key,
    ])
    .await;
    cli.ok(&[
        "cert", "upload", "--name", "www-2", "--cert", &new_cert, "--key", &new_key,
    ])
    .await;
    let (backends, port) = backends(1).await;
    let lb_port = fulcrum_testkit::closed_port().port();
    let listener = format!("HTTPS:{lb_port}:HTTP:{port}:www");
    cli.ok(&["lb", "create", "--name", "rot", "--listener", &listener])
        .await;
    let port_arg = lb_port.to_string();
    let set_cert = |cert: &'static str| {
        [
            "lb",
            "set-certificate",
            "--name",
            "rot",
            "--port",
            port_arg.as_str(),
            "--cert",
            cert,
        ]
    };
    let out = cli.ok(&set_cert("www-2")).await;
    assert!(out.contains("www-2"), "{out}");
    let doc = cli.json(&["lb", "describe", "--name", "rot"]).await;
    let l = &doc["LoadBalancerDescriptions"][0]["ListenerDescriptions"][0]["Listener"];
    assert_eq!(
        l["SSLCertificateId"],
        format!("{ARN_PREFIX}www-2"),
        "{doc:#}"
    );
    cli.fails_with(&set_cert("nope"), "CertificateNotFound")
        .await;
    drop(backends);
}

#[tokio::test]
async fn a_listener_takes_several_certificates_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let cli = Cli::new(&node);
    let ca = TestCa::new("fulcrum CLI certificates CA");
    for name in ["www", "api", "img"] {
        let (cert, key) = write_certificate(&ca, files.path(), name);
        cli.ok(&[
            "cert", "upload", "--name", name, "--cert", &cert, "--key", &key,
        ])
        .await;
    }
    let lb_port = fulcrum_testkit::closed_port().port();
    let listener = format!("HTTPS:{lb_port}:HTTP:8080:www");
    cli.ok(&["lb", "create", "--name", "multi", "--listener", &listener])
        .await;
    let port = lb_port.to_string();
    let on = |command: &'static str, cert: &'static str| {
        [
            "lb",
            command,
            "--name",
            "multi",
            "--port",
            port.as_str(),
            "--certificate",
            cert,
        ]
    };
    // By name and by ARN; adding one again changes nothing.
    let out = cli.ok(&on("add-certificate", "api")).await;
    assert!(out.contains("also serves api"), "{out}");
    let api_arn = format!("{ARN_PREFIX}api");
    let img_arn: &'static str = format!("{ARN_PREFIX}img").leak();
    let added = cli.json(&on("add-certificate", img_arn)).await;
    assert_eq!(
        added["Certificates"],
        serde_json::json!([{"CertificateArn": img_arn, "IsDefault": false}]),
        "{added:#}"
    );
    cli.ok(&on("add-certificate", "api")).await;

    let list = [
        "lb",
        "certificates",
        "--name",
        "multi",
        "--port",
        port.as_str(),
    ];
    let doc = cli.json(&list).await;
    assert_eq!(
        doc["Certificates"],
        serde_json::json!([
            {"CertificateArn": format!("{ARN_PREFIX}www"), "IsDefault": true},
            {"CertificateArn": api_arn, "IsDefault": false},
            {"CertificateArn": img_arn, "IsDefault": false},
        ]),
        "{doc:#}"
    );
    let text = cli.ok(&list).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("CERTIFICATE"), "{text}");
    assert!(
        lines[1].contains(&format!("{ARN_PREFIX}www")) && lines[1].ends_with("default"),
        "{text}"
    );
    assert!(lines[2].ends_with(&api_arn), "{text}");

    // The listener's SSLCertificateId is still its default.
    let d = cli.json(&["lb", "describe", "--name", "multi"]).await;
    assert_eq!(
        d["LoadBalancerDescriptions"][0]["ListenerDescriptions"][0]["Listener"]["SSLCertificateId"],
        format!("{ARN_PREFIX}www"),
        "{d:#}"
    );

    let out = cli.ok(&on("remove-certificate", "api")).await;
    assert!(out.contains("no longer serves api"), "{out}");
    let doc = cli.json(&list).await;
    let arns: Vec<&str> = doc["Certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["CertificateArn"].as_str().unwrap())
        .collect();
    assert_eq!(arns, [format!("{ARN_PREFIX}www").as_str(), img_arn]);

    let err = cli
        .fails_with(
            &on("remove-certificate", "www"),
            "InvalidConfigurationRequest",
        )
        .await;
    assert!(
        err.contains("SetLoadBalancerListenerSSLCertificate"),
        "{err}"
    );
    cli.fails_with(&on("add-certificate", "nope"), "CertificateNotFound")
        .await;
    cli.fails_with(&["cert", "delete", "--name", "img"], "DeleteConflict")
        .await;
    cli.fails_with(
        &["lb", "certificates", "--name", "multi", "--port", "1"],
        "ListenerNotFound",
    )
    .await;
    cli.fails_with(
        &[
            "lb",
            "certificates",
            "--name",
            "nope",
            "--port",
            port.as_str(),
        ],
        "LoadBalancerNotFound",
    )
    .await;
}
