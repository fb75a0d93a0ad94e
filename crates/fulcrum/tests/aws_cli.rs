//! The seed's four steps with the real aws CLI against a real `fulcrum serve`, then HTTPS
//! traffic through the new listener.
//!
//! The CLI comes from the venv that `scripts/test` installs (`FULCRUM_AWS_CLI`), or from `PATH`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{backends_on_one_port, bind_address, Fulcrum, Serve};
use fulcrum_testkit::{eventually, https_get, TestCa};
use serde_json::Value;

fn aws_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("FULCRUM_AWS_CLI") {
        return PathBuf::from(path);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/awscli-venv/bin/aws");
    if venv.exists() {
        return venv;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("aws"))
        .find(|p| p.exists())
        .expect("the aws CLI: run scripts/test (it installs one in target/awscli-venv) or set FULCRUM_AWS_CLI")
}

/// Runs `aws --endpoint-url ... ARGS` as the node's admin and returns its JSON output.
async fn aws(node: &Fulcrum, args: &[&str]) -> Result<Value, String> {
    let dir = node.data_dir.as_ref().unwrap();
    let run = tokio::process::Command::new(aws_cli())
        .arg("--endpoint-url")
        .arg(format!("http://{}", node.api.unwrap()))
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
