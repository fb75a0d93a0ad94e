//! `--metrics`: the Prometheus endpoint of a real node, scraped over HTTP after known traffic
//! and read by the Prometheus project's own text-format parser (the `prometheus-client` Python
//! package that `scripts/test` installs in the aws CLI's venv), not by a parser of ours.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use fulcrum_testkit::{client_tls_config, http_get, https_get};

use crate::common::{backends_on_one_port, bind_address, wait_in_service, Serve};

/// The Python that has `prometheus_client`: `FULCRUM_PYTHON`, else the aws CLI venv's (the one
/// `scripts/test` installs), else `python3`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("FULCRUM_PYTHON") {
        return p.into();
    }
    if let Some(aws) = std::env::var_os("FULCRUM_AWS_CLI") {
        return Path::new(&aws).with_file_name("python3");
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/awscli-venv/bin/python3");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

/// One sample as the parser read it.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
    /// The family's type, as its `# TYPE` line said.
    kind: String,
}

/// Parses an exposition with `prometheus_client.parser` (which fails on malformed text).
fn parse(text: &str) -> Vec<Sample> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"name": s.name, "labels": s.labels, "value": s.value, "kind": family.type})
print(json.dumps(out))
"#;
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python for prometheus_client (set FULCRUM_PYTHON or FULCRUM_AWS_CLI)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("the parser's JSON");
    all.into_iter()
        .map(|s| Sample {
            name: s["name"].as_str().unwrap().to_owned(),
            labels: s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect(),
            value: s["value"].as_f64().unwrap(),
            kind: s["kind"].as_str().unwrap().to_owned(),
        })
        .collect()
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

async fn scrape(addr: SocketAddr) -> Vec<Sample> {
    let reply = http_get(addr, "/metrics", &[])
        .await
        .expect("scrape /metrics");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(
        reply.response_header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(std::str::from_utf8(&reply.body).expect("UTF-8 exposition"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic_and_parse_as_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let (backends, _) = backends_on_one_port(1).await;
    let web = fulcrum_testkit::closed_port().port();
    let empty = fulcrum_testkit::closed_port().port();
    crate::seed_web_and_empty(dir.path(), web, empty, backends[0].addr());
    let metrics = SocketAddr::new(bind, fulcrum_testkit::closed_port().port());
    let metrics_arg = metrics.to_string();
    let mut node = Serve::new(dir.path(), bind)
        .demo()
        .args(&[
            "--metrics",
            &metrics_arg,
            "--metrics-buckets",
            "0.001,0.25,1",
        ])
        .spawn_healthy()
        .await;
    node.wait_healthy().await;
    let web = SocketAddr::new(bind, web);
    wait_in_service(web).await;

    let before = scrape(metrics).await;
    let requests = |s: &[Sample]| value(s, "fulcrum_requests_total", &[("load_balancer", "web")]);
    let base = requests(&before);

    // Known traffic: 3 answered 200, 2 answered 500 by the instance, 1 that takes 300 ms, and
    // 2 refused by the balancer for want of an instance.
    for _ in 0..3 {
        assert_eq!(http_get(web, "/", &[]).await.unwrap().status, 200);
    }
    for _ in 0..2 {
        assert_eq!(http_get(web, "/status/500", &[]).await.unwrap().status, 500);
    }
    assert_eq!(http_get(web, "/delay/300", &[]).await.unwrap().status, 200);
    let empty = SocketAddr::new(bind, empty);
    for _ in 0..2 {
        assert_eq!(http_get(empty, "/", &[]).await.unwrap().status, 503);
    }
    // Two TLS connections with one client config: a full handshake, then a resumed one.
    wait_in_service(SocketAddr::new(bind, 8080)).await;
    let cert = std::fs::read_to_string(dir.path().join("demo-cert.pem")).unwrap();
    let tls = client_tls_config(&cert, &[b"http/1.1"]);
    for _ in 0..2 {
        let reply = https_get(
            SocketAddr::new(bind, 8443),
            "localhost",
            tls.clone(),
            "/",
            &[],
        )
        .await
        .expect("HTTPS through the demo");
        assert_eq!(reply.status, 200);
    }

    let after = scrape(metrics).await;
    let lb = |name: &'static str| [("load_balancer", name)];
    // The 200s and 500s after the readiness polls counted in `base`.
    assert_eq!(requests(&after) - base, 6.0);
    let class = |s: &[Sample], family: &str, class: &str| {
        value(
            s,
            family,
            &[("load_balancer", "web"), ("code_class", class)],
        )
    };
    assert_eq!(
        class(&after, "fulcrum_backend_responses_total", "5xx")
            - class(&before, "fulcrum_backend_responses_total", "5xx"),
        2.0
    );
    assert_eq!(
        class(&after, "fulcrum_backend_responses_total", "2xx")
            - class(&before, "fulcrum_backend_responses_total", "2xx"),
        4.0
    );
    assert_eq!(value(&after, "fulcrum_requests_total", &lb("empty")), 2.0);
    assert_eq!(
        value(
            &after,
            "fulcrum_elb_responses_total",
            &[("load_balancer", "empty"), ("code_class", "5xx")]
        ),
        2.0
    );

    // Latency is a histogram with the configured buckets: the 300 ms request is above 0.25 s.
    let bucket = |s: &[Sample], le: &str| {
        value(
            s,
            "fulcrum_latency_seconds_bucket",
            &[("load_balancer", "web"), ("le", le)],
        )
    };
    let latency = after
        .iter()
        .find(|s| s.name == "fulcrum_latency_seconds_bucket")
        .expect("a latency bucket");
    assert_eq!(latency.kind, "histogram");
    assert_eq!(bucket(&after, "0.25") - bucket(&before, "0.25"), 5.0);
    assert_eq!(bucket(&after, "1") - bucket(&before, "1"), 6.0);
    assert_eq!(
        bucket(&after, "+Inf"),
        value(&after, "fulcrum_latency_seconds_count", &lb("web"))
    );
    assert!(value(&after, "fulcrum_latency_seconds_sum", &lb("web")) >= 0.3);

    // Gauges and connections.
    assert_eq!(value(&after, "fulcrum_healthy_hosts", &lb("web")), 1.0);
    assert_eq!(value(&after, "fulcrum_unhealthy_hosts", &lb("web")), 0.0);
    // The demo's two instances may still be on their first checks: each is counted once.
    assert_eq!(
        value(&after, "fulcrum_healthy_hosts", &lb("demo"))
            + value(&after, "fulcrum_unhealthy_hosts", &lb("demo")),
        2.0
    );
    assert!(value(&after, "fulcrum_connections_total", &lb("web")) >= 6.0);

    // TLS: one full and one resumed handshake on the demo's HTTPS listener.
    let handshakes = |kind: &str| {
        after
            .iter()
            .filter(|s| {
                s.name == "fulcrum_tls_handshakes_total"
                    && s.labels.get("load_balancer").map(String::as_str) == Some("demo")
                    && s.labels.get("kind").map(String::as_str) == Some(kind)
            })
            .map(|s| s.value)
            .sum::<f64>()
    };
    assert_eq!(handshakes("full"), 1.0);
    assert_eq!(handshakes("resumed"), 1.0);
    assert_eq!(
        value(&after, "fulcrum_tls_handshake_failures_total", &lb("demo")),
        0.0
    );

    // Only /metrics is served there.
    let other = http_get(metrics, "/", &[]).await.unwrap();
    assert_eq!(other.status, 404);
    drop(node);
}
