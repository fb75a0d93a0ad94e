//! The seed's four steps with the real aws CLI against a real `fulcrum serve`, then HTTPS
//! traffic through the new listener.
//!
//! The CLI comes from the venv that `scripts/test` installs (`FULCRUM_AWS_CLI`), or from `PATH`.

mod common;

use std::time::Duration;

use common::{aws_cli, backends_on_one_port, bind_address, Fulcrum, Serve};
use fulcrum_testkit::{eventually, https_get, TestCa};
use serde_json::Value;

/// Runs `aws --endpoint-url ... ARGS` as the node's admin and returns its JSON output.
async fn aws(node: &Fulcrum, args: &[&str]) -> Result<Value, String> {
    aws_at(node, &format!("http://{}", node.api.unwrap()), args).await
}

/// The same against `endpoint` (extra CLI options such as `--ca-bundle` go in `args`).
async fn aws_at(node: &Fulcrum, endpoint: &str, args: &[&str]) -> Result<Value, String> {
    let dir = node.data_dir.as_ref().unwrap();
    let run = tokio::process::Command::new(aws_cli())
        .arg("--endpoint-url")
        .arg(endpoint)
        .args(["--output", "json"])
        .args(args)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
        .env("AWS_PROFILE", "fulcrum")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| format!("aws {args:?} timed out"))?
        .map_err(|e| format!("cannot run the aws CLI: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&stdout)
        .map_err(|e| format!("aws {args:?} printed no JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_four_steps_with_the_aws_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Serve::new(dir.path(), bind_address()).spawn();
    node.wait_healthy().await;

    // 1. Upload the certificate.
    let ca = TestCa::new("aws cli test CA");
    let (cert, key) = ca.issue(&["www.example.test"]);
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(files.path().join("key.pem"), &key).unwrap();
    let file_arg = |name: &str| format!("file://{}", files.path().join(name).display());
    let uploaded = aws(
        &node,
        &[
            "iam",
            "upload-server-certificate",
            "--server-certificate-name",
            "www",
            "--certificate-body",
            &file_arg("cert.pem"),
            "--private-key",
            &file_arg("key.pem"),
        ],
    )
    .await
    .unwrap();
    let arn = uploaded["ServerCertificateMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(arn, "arn:aws:iam::000000000000:server-certificate/www");
    // The key never comes back.
    let fetched = aws(
        &node,
        &[
            "iam",
            "get-server-certificate",
            "--server-certificate-name",
            "www",
        ],
    )
    .await
    .unwrap();
    assert!(!fetched.to_string().contains("PRIVATE KEY"));

    // 2. A load balancer with an HTTPS listener naming it.
    let (backends, instance_port) = backends_on_one_port(2).await;
    let lb_port = fulcrum_testkit::closed_port().port();
    let listener = format!(
        "Protocol=HTTPS,LoadBalancerPort={lb_port},InstanceProtocol=HTTP,InstancePort={instance_port},SSLCertificateId={arn}"
    );
    aws(
        &node,
        &[
            "elb",
            "create-load-balancer",
            "--load-balancer-name",
            "web",
            "--listeners",
            &listener,
            "--availability-zones",
            "us-east-1a",
        ],
    )
    .await
    .unwrap();

    // 3. The health check, and the instances.
    let target = format!("Target=HTTP:{instance_port}/health,Interval=5,Timeout=2,UnhealthyThreshold=2,HealthyThreshold=2");
    aws(
        &node,
        &[
            "elb",
            "configure-health-check",
            "--load-balancer-name",
            "web",
            "--health-check",
            &target,
        ],
    )
    .await
    .unwrap();
    let mut register = vec![
        "elb",
        "register-instances-with-load-balancer",
        "--load-balancer-name",
        "web",
        "--instances",
    ];
    let ids: Vec<String> = backends.iter().map(|b| b.addr().ip().to_string()).collect();
    register.extend(ids.iter().map(String::as_str));
    let registered = aws(&node, &register).await.unwrap();
    assert_eq!(registered["Instances"].as_array().unwrap().len(), 2);

    // 4. Traffic flows once describe-instance-health says InService.
    let node = std::sync::Arc::new(node);
    let watcher = std::sync::Arc::clone(&node);
    eventually(
        "both instances InService",
        Duration::from_secs(30),
        move || {
            let node = std::sync::Arc::clone(&watcher);
            async move {
                let health = aws(
                    &node,
                    &[
                        "elb",
                        "describe-instance-health",
                        "--load-balancer-name",
                        "web",
                    ],
                )
                .await;
                health.is_ok_and(|h| {
                    h["InstanceStates"].as_array().is_some_and(|s| {
                        s.len() == 2 && s.iter().all(|i| i["State"] == "InService")
                    })
                })
            }
        },
    )
    .await;
    let client = fulcrum_testkit::client_tls_config(&ca.cert_pem(), &[b"h2", b"http/1.1"]);
    let addr = std::net::SocketAddr::new(node.bind.unwrap(), lb_port);
    let mut served = std::collections::HashSet::new();
    for _ in 0..4 {
        let reply = https_get(addr, "www.example.test", client.clone(), "/", &[])
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.describe());
        assert_eq!(reply.header("x-forwarded-proto"), Some("https"));
        served.insert(reply.instance());
    }
    assert_eq!(served.len(), 2, "both instances served");

    // An error comes back in AWS's shape, which the CLI understands.
    let err = aws(
        &node,
        &[
            "elb",
            "describe-load-balancers",
            "--load-balancer-names",
            "nope",
        ],
    )
    .await
    .unwrap_err();
    assert!(err.contains("LoadBalancerNotFound"), "{err}");
    drop(backends);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_describe_network_interfaces_is_answered_in_ec2s_shape() {
    // Terraform's aws_elb destroy asks EC2 for the network interfaces a VPC load balancer left
    // behind, on the same endpoint: an empty set, which the EC2 client can parse.
    let dir = tempfile::tempdir().unwrap();
    let mut node = Serve::new(dir.path(), bind_address()).spawn();
    node.wait_healthy().await;
    let out = aws(
        &node,
        &[
            "ec2",
            "describe-network-interfaces",
            "--filters",
            "Name=description,Values=ELB web",
        ],
    )
    .await
    .expect("describe-network-interfaces");
    assert_eq!(out["NetworkInterfaces"], serde_json::json!([]), "{out}");
    // Any other EC2 action is refused with an error the EC2 client reads (its code, not a
    // parse failure).
    let refused = aws(&node, &["ec2", "describe-instances"])
        .await
        .expect_err("describe-instances is not fulcrum's");
    assert!(refused.contains("(InvalidAction)"), "{refused}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_tls_with_its_generated_ca_for_the_aws_cli_and_fulcrum() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Serve::new(dir.path(), bind_address())
        .args(&["--api-tls", "self-signed"])
        .spawn();
    let api = node.api.unwrap();
    let ca = dir.path().join("api-ca.pem");
    let started = node
        .wait_stdout("the aws CLI line", |l| l.contains("--ca-bundle"))
        .await;
    assert!(
        started.contains(&format!("https://{api}")) && started.contains(ca.to_str().unwrap()),
        "{started}"
    );
    let tls = fulcrum_testkit::client_tls_config(&std::fs::read_to_string(&ca).unwrap(), &[]);
    fulcrum_testkit::eventually("/healthz 200 over TLS", Duration::from_secs(20), || {
        let tls = tls.clone();
        async move {
            fulcrum_testkit::https_get(api, "localhost", tls, "/healthz", &[])
                .await
                .is_ok_and(|r| r.status == 200)
        }
    })
    .await;
    // Plain HTTP gets nothing from it.
    assert!(
        fulcrum_testkit::http_get(api, "/healthz", &[])
            .await
            .map_or(true, |r| r.status != 200),
        "the TLS API answered plain HTTP"
    );

    // The aws CLI, trusting the generated CA: a private key crosses the API, encrypted.
    let endpoint = format!("https://{api}");
    let ca_arg = ca.to_str().unwrap();
    let ca_test = TestCa::new("tls api test CA");
    let (cert, key) = ca_test.issue(&["tls.example.test"]);
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(files.path().join("key.pem"), &key).unwrap();
    let file_arg = |name: &str| format!("file://{}", files.path().join(name).display());
    let uploaded = aws_at(
        &node,
        &endpoint,
        &[
            "--ca-bundle",
            ca_arg,
            "iam",
            "upload-server-certificate",
            "--server-certificate-name",
            "over-tls",
            "--certificate-body",
            &file_arg("cert.pem"),
            "--private-key",
            &file_arg("key.pem"),
        ],
    )
    .await
    .expect("upload over TLS");
    assert_eq!(
        uploaded["ServerCertificateMetadata"]["ServerCertificateName"],
        "over-tls"
    );
    // The Rust SDK, trusting the same CA.
    let (key_id, secret) = node.credentials();
    let trust = aws_smithy_http_client::tls::TlsContext::builder()
        .with_trust_store(
            aws_smithy_http_client::tls::TrustStore::empty()
                .with_pem_certificate(std::fs::read(&ca).unwrap()),
        )
        .build()
        .unwrap();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(trust)
        .build_https();
    let elb = aws_sdk_elasticloadbalancing::Client::from_conf(
        aws_sdk_elasticloadbalancing::Config::builder()
            .endpoint_url(&endpoint)
            .region(aws_sdk_elasticloadbalancing::config::Region::new(
                "us-east-1",
            ))
            .credentials_provider(aws_credential_types::Credentials::new(
                key_id, secret, None, None, "fulcrum",
            ))
            .behavior_version(aws_sdk_elasticloadbalancing::config::BehaviorVersion::latest())
            .http_client(http)
            .build(),
    );
    elb.describe_load_balancers()
        .send()
        .await
        .expect("the Rust SDK over TLS");
    // Without the CA, the aws CLI refuses the certificate.
    let refused = aws_at(&node, &endpoint, &["elb", "describe-load-balancers"]).await;
    assert!(refused.is_err(), "the aws CLI trusted an unknown CA");

    // The fulcrum CLI trusts the same file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args([
            "cert",
            "list",
            "--endpoint",
            &endpoint,
            "--ca-bundle",
            ca_arg,
        ])
        .arg("--credentials")
        .arg(dir.path().join("credentials"))
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("over-tls"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.stop().await;
}
