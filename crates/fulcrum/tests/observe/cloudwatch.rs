//! CloudWatch's API for `AWS/ELB` on a real node, driven by the real aws CLI after known
//! traffic through real load balancers: the sums it prints, Latency's Average, Maximum and
//! p99, ListMetrics, GetMetricData, CloudWatch's errors, and the same answers in each protocol
//! the CLI can speak (awsJson1_0, which it prefers; rpc-v2-cbor and Query, by giving it a copy
//! of its own CloudWatch model that lists only that protocol).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fulcrum_testkit::{eventually, http_get};
use serde_json::Value;

use crate::common::{aws_cli, backends_on_one_port, bind_address, wait_in_service, Fulcrum, Serve};

/// How the CLI is made to speak CloudWatch: its own choice, or a model that allows one
/// protocol only (a directory for `AWS_DATA_PATH`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    Preferred,
    Cbor,
    Query,
}

impl Wire {
    fn protocol(self) -> Option<&'static str> {
        match self {
            Wire::Preferred => None,
            Wire::Cbor => Some("smithy-rpc-v2-cbor"),
            Wire::Query => Some("query"),
        }
    }
}

/// Writes, under `dir`, the CLI's own CloudWatch model with `protocol` as its only one, for
/// `AWS_DATA_PATH`; read and written by the venv's Python, which knows where the model is.
fn model_with_protocol(dir: &Path, protocol: &str) {
    let python = aws_cli().with_file_name("python3");
    let script = r#"
import json, os, sys
import awscli.botocore as botocore
src = os.path.join(os.path.dirname(botocore.__file__), "data", "cloudwatch", "2010-08-01", "service-2.json")
model = json.load(open(src))
model["metadata"]["protocol"] = sys.argv[2]
model["metadata"]["protocols"] = [sys.argv[2]]
dst = os.path.join(sys.argv[1], "cloudwatch", "2010-08-01")
os.makedirs(dst, exist_ok=True)
json.dump(model, open(os.path.join(dst, "service-2.json"), "w"))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(dir)
        .arg(protocol)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "could not write a CloudWatch model for {protocol}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The aws CLI against one node, speaking CloudWatch one way.
struct Cli<'a> {
    node: &'a Fulcrum,
    wire: Wire,
    models: Option<tempfile::TempDir>,
}

impl<'a> Cli<'a> {
    fn new(node: &'a Fulcrum, wire: Wire) -> Cli<'a> {
        let models = wire.protocol().map(|p| {
            let dir = tempfile::tempdir().unwrap();
            model_with_protocol(dir.path(), p);
            dir
        });
        Cli { node, wire, models }
    }

    /// Runs `aws --endpoint-url ... cloudwatch ARGS`: its JSON output, or its stderr.
    async fn run(&self, args: &[&str]) -> Result<Value, String> {
        let dir = self.node.data_dir.as_ref().unwrap();
        let mut cmd = tokio::process::Command::new(aws_cli());
        cmd.arg("--endpoint-url")
            .arg(format!("http://{}", self.node.api.unwrap()))
            .args(["--output", "json", "cloudwatch"])
            .args(args)
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
            .env("AWS_PROFILE", "fulcrum")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_DATA_PATH")
            .kill_on_drop(true);
        if let Some(models) = &self.models {
            cmd.env("AWS_DATA_PATH", models.path());
        }
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .map_err(|_| format!("aws cloudwatch {args:?} timed out"))?
            .map_err(|e| format!("cannot run the aws CLI: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "aws cloudwatch {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    async fn ok(&self, args: &[&str]) -> Value {
        self.run(args)
            .await
            .unwrap_or_else(|e| panic!("{:?}: aws cloudwatch {args:?} failed: {e}", self.wire))
    }

    /// Asserts that the CLI reports CloudWatch's error `code`.
    async fn refused(&self, args: &[&str], code: &str) -> String {
        let stderr = match self.run(args).await {
            Ok(v) => panic!("{:?}: aws cloudwatch {args:?} succeeded: {v}", self.wire),
            Err(e) => e,
        };
        assert!(
            stderr.contains(&format!("An error occurred ({code})")),
            "{:?}: aws cloudwatch {args:?}: expected {code}, got: {stderr}",
            self.wire
        );
        stderr
    }

    /// `get-metric-statistics` of one metric over the last ten minutes and the next two.
    async fn statistics(&self, metric: &str, lb: Option<&str>, extra: &[&str]) -> Vec<Value> {
        let (start, end) = window();
        let dims = lb.map(|lb| format!("Name=LoadBalancerName,Value={lb}"));
        let mut args = vec![
            "get-metric-statistics",
            "--namespace",
            "AWS/ELB",
            "--metric-name",
            metric,
            "--start-time",
            &start,
            "--end-time",
            &end,
        ];
        if let Some(dims) = &dims {
            args.extend(["--dimensions", dims]);
        }
        if !extra.contains(&"--period") {
            args.extend(["--period", "60"]);
        }
        args.extend(extra);
        let out = self.ok(&args).await;
        assert_eq!(out["Label"], metric);
        out["Datapoints"].as_array().unwrap().clone()
    }

    /// The Sum over every datapoint of a metric (whatever minutes the traffic fell in).
    async fn sum(&self, metric: &str, lb: Option<&str>) -> f64 {
        let points = self.statistics(metric, lb, &["--statistics", "Sum"]).await;
        for p in &points {
            assert_eq!(p["Unit"], "Count", "{p}");
        }
        points.iter().map(|p| p["Sum"].as_f64().unwrap()).sum()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// From ten minutes ago to two minutes from now, in epoch seconds (which the CLI takes for
/// timestamps as it takes ISO 8601).
fn window() -> (String, String) {
    let now = now();
    ((now - 600).to_string(), (now + 120).to_string())
}

/// A datapoint's Timestamp in seconds, whether the protocol gave a number (JSON, CBOR: the
/// CLI prints what came) or ISO 8601 text (Query).
fn seconds(t: &Value) -> i64 {
    if let Some(n) = t.as_f64() {
        return n as i64;
    }
    let text = t.as_str().unwrap_or_else(|| panic!("a timestamp: {t}"));
    // `2026-12-01T21:19:00.000Z`, as the Query protocol writes it.
    let field = |range: std::ops::Range<usize>| -> i64 {
        text.get(range)
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("not ISO 8601: {text}"))
    };
    let (y, m, d) = (field(0..4), field(5..7), field(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + field(11..13) * 3600 + field(14..16) * 60 + field(17..19)
}

/// A node with `web` and `empty`, `web` in service.
async fn node_with_two_load_balancers(
    dir: &Path,
) -> (Fulcrum, SocketAddr, SocketAddr, fulcrum_testkit::Backend) {
    let bind = bind_address();
    let (mut backends, _) = backends_on_one_port(1).await;
    let web = fulcrum_testkit::closed_port().port();
    let empty = fulcrum_testkit::closed_port().port();
    crate::seed_web_and_empty(dir, web, empty, backends[0].addr());
    let node = Serve::new(dir, bind).spawn_healthy().await;
    let web = SocketAddr::new(bind, web);
    wait_in_service(web).await;
    (node, web, SocketAddr::new(bind, empty), backends.remove(0))
}

/// Known traffic: 3 answered 200 by the instance, 2 answered 500, 1 that takes 300 ms (200),
/// and 2 answered 503 by the balancer for want of an instance.
async fn known_traffic(web: SocketAddr, empty: SocketAddr) {
    for _ in 0..3 {
        assert_eq!(http_get(web, "/", &[]).await.unwrap().status, 200);
    }
    for _ in 0..2 {
        assert_eq!(http_get(web, "/status/500", &[]).await.unwrap().status, 500);
    }
    assert_eq!(http_get(web, "/delay/300", &[]).await.unwrap().status, 200);
    for _ in 0..2 {
        assert_eq!(http_get(empty, "/", &[]).await.unwrap().status, 503);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_reads_elb_metrics_after_known_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (node, web, empty, _backend) = node_with_two_load_balancers(dir.path()).await;
    let cli = Cli::new(&node, Wire::Preferred);

    // `web` has counted the readiness polls: what the traffic adds is compared.
    let before = |metric| cli.sum(metric, Some("web"));
    let (requests, ok, errors) = (
        before("RequestCount").await,
        before("HTTPCode_Backend_2XX").await,
        before("HTTPCode_Backend_5XX").await,
    );
    known_traffic(web, empty).await;

    // At once: the minute under way is in the answer.
    assert_eq!(cli.sum("RequestCount", Some("web")).await - requests, 6.0);
    assert_eq!(cli.sum("HTTPCode_Backend_2XX", Some("web")).await - ok, 4.0);
    assert_eq!(
        cli.sum("HTTPCode_Backend_5XX", Some("web")).await - errors,
        2.0
    );
    assert_eq!(cli.sum("RequestCount", Some("empty")).await, 2.0);
    assert_eq!(cli.sum("HTTPCode_ELB_5XX", Some("empty")).await, 2.0);
    assert_eq!(cli.sum("HTTPCode_ELB_5XX", Some("web")).await, 0.0);
    // Without a dimension, every load balancer added up.
    let all = cli.sum("RequestCount", None).await;
    assert_eq!(all, cli.sum("RequestCount", Some("web")).await + 2.0);

    // One datapoint per minute with traffic, on the minute; RequestCount's samples are 1s.
    let points = cli
        .statistics(
            "RequestCount",
            Some("empty"),
            &["--statistics", "Sum", "SampleCount", "Minimum", "Maximum"],
        )
        .await;
    assert!(!points.is_empty() && points.len() <= 2, "{points:?}");
    for p in &points {
        assert_eq!(seconds(&p["Timestamp"]) % 60, 0, "{p}");
        assert_eq!(p["Sum"], p["SampleCount"], "{p}");
        assert_eq!(
            (p["Minimum"].as_f64(), p["Maximum"].as_f64()),
            (Some(1.0), Some(1.0))
        );
    }

    // Latency: the 300 ms request is the Maximum; the others are fast.
    let latency = cli
        .statistics(
            "Latency",
            Some("web"),
            &["--statistics", "Average", "Maximum", "--period", "3600"],
        )
        .await;
    assert!(!latency.is_empty() && latency.len() <= 2, "{latency:?}");
    let max = latency
        .iter()
        .map(|p| p["Maximum"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!((0.3..5.0).contains(&max), "Maximum {max}");
    for p in &latency {
        assert_eq!(p["Unit"], "Seconds");
        let average = p["Average"].as_f64().unwrap();
        assert!(average > 0.0 && average <= max, "{p}");
    }
    let p99 = cli
        .statistics(
            "Latency",
            Some("web"),
            &["--extended-statistics", "p99", "p50", "--period", "3600"],
        )
        .await;
    let top = p99
        .iter()
        .map(|p| p["ExtendedStatistics"]["p99"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(top > 0.0 && top <= max, "p99 {top}, Maximum {max}");

    // Gauges: sampled every ten seconds, so the first reading may take that long.
    let node_ref = &node;
    eventually(
        "HealthyHostCount of web",
        Duration::from_secs(20),
        || async move {
            let cli = Cli::new(node_ref, Wire::Preferred);
            let points = cli
                .statistics(
                    "HealthyHostCount",
                    Some("web"),
                    &["--statistics", "Maximum"],
                )
                .await;
            points.iter().any(|p| p["Maximum"].as_f64() == Some(1.0))
        },
    )
    .await;

    // ListMetrics: each metric per load balancer and once without dimensions.
    let listed = cli.ok(&["list-metrics", "--namespace", "AWS/ELB"]).await;
    let metrics = listed["Metrics"].as_array().unwrap();
    let has = |name: &str, lb: Option<&str>| {
        metrics.iter().any(|m| {
            let dims = m["Dimensions"].as_array().unwrap();
            m["Namespace"] == "AWS/ELB"
                && m["MetricName"] == name
                && match lb {
                    None => dims.is_empty(),
                    Some(lb) => {
                        dims.len() == 1
                            && dims[0]["Name"] == "LoadBalancerName"
                            && dims[0]["Value"] == lb
                    }
                }
        })
    };
    for (name, lb) in [
        ("RequestCount", Some("web")),
        ("RequestCount", Some("empty")),
        ("RequestCount", None),
        ("Latency", Some("web")),
        ("HTTPCode_Backend_5XX", Some("web")),
        ("HTTPCode_ELB_5XX", Some("empty")),
        ("HealthyHostCount", Some("web")),
    ] {
        assert!(has(name, lb), "{name} {lb:?} not listed: {listed}");
    }
    assert!(!has("Latency", Some("empty")), "no instance, no latency");
    let filtered = cli
        .ok(&[
            "list-metrics",
            "--metric-name",
            "RequestCount",
            "--dimensions",
            "Name=LoadBalancerName,Value=empty",
        ])
        .await;
    assert_eq!(
        filtered["Metrics"].as_array().unwrap().len(),
        1,
        "{filtered}"
    );
    let other = cli.ok(&["list-metrics", "--namespace", "AWS/EC2"]).await;
    assert_eq!(other["Metrics"], serde_json::json!([]));
    let (start, end) = window();
    let ec2 = cli
        .ok(&[
            "get-metric-statistics",
            "--namespace",
            "AWS/EC2",
            "--metric-name",
            "RequestCount",
            "--statistics",
            "Sum",
            "--period",
            "60",
            "--start-time",
            &start,
            "--end-time",
            &end,
        ])
        .await;
    assert_eq!(
        ec2["Datapoints"],
        serde_json::json!([]),
        "another namespace has nothing"
    );

    // GetMetricData: the same sums, newest first.
    let queries = serde_json::json!([
        {"Id": "web", "MetricStat": {"Metric": {"Namespace": "AWS/ELB", "MetricName": "RequestCount",
            "Dimensions": [{"Name": "LoadBalancerName", "Value": "web"}]}, "Period": 60, "Stat": "Sum"}},
        {"Id": "refused", "Label": "503s", "MetricStat": {"Metric": {"Namespace": "AWS/ELB",
            "MetricName": "HTTPCode_ELB_5XX", "Dimensions": [{"Name": "LoadBalancerName", "Value": "empty"}]},
            "Period": 300, "Stat": "Sum"}},
        {"Id": "hidden", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "AWS/ELB",
            "MetricName": "Latency"}, "Period": 60, "Stat": "p99"}}
    ])
    .to_string();
    let data = cli
        .ok(&[
            "get-metric-data",
            "--start-time",
            &start,
            "--end-time",
            &end,
            "--metric-data-queries",
            &queries,
        ])
        .await;
    let results = data["MetricDataResults"].as_array().unwrap();
    assert_eq!(results.len(), 2, "ReturnData false is left out: {data}");
    let total = |r: &Value| -> f64 {
        r["Values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum()
    };
    assert_eq!(results[0]["Id"], "web");
    assert_eq!(results[0]["Label"], "RequestCount");
    assert_eq!(results[0]["StatusCode"], "Complete");
    assert_eq!(
        total(&results[0]),
        cli.sum("RequestCount", Some("web")).await
    );
    let stamps: Vec<i64> = results[0]["Timestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(seconds)
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] > w[1]),
        "descending: {stamps:?}"
    );
    assert_eq!(results[1]["Label"], "503s");
    assert_eq!(total(&results[1]), 2.0);

    // CloudWatch's errors, as the CLI reports them.
    refused_everywhere(&cli, &start, &end).await;
    let expression = serde_json::json!([{"Id": "e1", "Expression": "SUM(METRICS())"}]).to_string();
    let stderr = cli
        .refused(
            &[
                "get-metric-data",
                "--start-time",
                &start,
                "--end-time",
                &end,
                "--metric-data-queries",
                &expression,
            ],
            "ValidationError",
        )
        .await;
    assert!(stderr.contains("expressions"), "{stderr}");
    cli.refused(&["describe-alarms"], "InvalidAction").await;

    // A restart keeps the minutes: the stopping node stores the minute so far.
    let empty_requests = cli.sum("RequestCount", Some("empty")).await;
    drop(cli);
    let mut node = node;
    node.stop().await;
    assert!(dir.path().join("metrics.db").exists());
    let node = Serve::new(dir.path(), node.bind.unwrap())
        .spawn_healthy()
        .await;
    let cli = Cli::new(&node, Wire::Preferred);
    assert_eq!(cli.sum("RequestCount", Some("empty")).await, empty_requests);
    assert_eq!(cli.sum("HTTPCode_ELB_5XX", Some("empty")).await, 2.0);
}

/// Bad input that every protocol must refuse the same way.
async fn refused_everywhere(cli: &Cli<'_>, start: &str, end: &str) {
    let base = [
        "get-metric-statistics",
        "--namespace",
        "AWS/ELB",
        "--metric-name",
        "RequestCount",
    ];
    let call = |extra: &[&'static str], start: &str, end: &str| {
        let mut args: Vec<String> = base.iter().map(|s| (*s).to_owned()).collect();
        args.extend([
            "--start-time".into(),
            start.into(),
            "--end-time".into(),
            end.into(),
        ]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let cases: [(&[&'static str], &str, &str, &str, &str); 6] = [
        (
            &["--period", "61", "--statistics", "Sum"],
            "InvalidParameterValue",
            start,
            end,
            "multiple of 60",
        ),
        (
            &["--period", "60", "--statistics", "Sum"],
            "InvalidParameterValue",
            end,
            start,
            "StartTime must be less than",
        ),
        (
            &["--period", "60", "--statistics", "Median"],
            "InvalidParameterValue",
            start,
            end,
            "Statistics.member.1",
        ),
        (
            &["--period", "60", "--extended-statistics", "p101"],
            "InvalidParameterValue",
            start,
            end,
            "p101",
        ),
        (
            &["--period", "60"],
            "MissingParameter",
            start,
            end,
            "Statistics",
        ),
        (
            &[
                "--period",
                "60",
                "--statistics",
                "Sum",
                "--extended-statistics",
                "p99",
            ],
            "InvalidParameterCombination",
            start,
            end,
            "mutually exclusive",
        ),
    ];
    for (extra, code, start, end, says) in cases {
        let args = call(extra, start, end);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = cli.refused(&args, code).await;
        assert!(stderr.contains(says), "{:?} {extra:?}: {stderr}", cli.wire);
    }
    // More than 1,440 datapoints.
    let args = call(
        &["--period", "60", "--statistics", "Sum"],
        "2026-01-01T00:00:00Z",
        "2026-01-03T00:00:00Z",
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = cli.refused(&args, "InvalidParameterCombination").await;
    assert!(stderr.contains("2880 datapoints"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_of_the_cli_gets_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (node, web, empty, _backend) = node_with_two_load_balancers(dir.path()).await;
    known_traffic(web, empty).await;
    let preferred = Cli::new(&node, Wire::Preferred);
    let expected = preferred
        .statistics(
            "HTTPCode_ELB_5XX",
            Some("empty"),
            &["--statistics", "Sum", "Maximum"],
        )
        .await;
    let (start, end) = window();
    for wire in [Wire::Cbor, Wire::Query] {
        let cli = Cli::new(&node, wire);
        let got = cli
            .statistics(
                "HTTPCode_ELB_5XX",
                Some("empty"),
                &["--statistics", "Sum", "Maximum"],
            )
            .await;
        assert_eq!(
            got.len(),
            expected.len(),
            "{wire:?}: {got:?} vs {expected:?}"
        );
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(
                seconds(&g["Timestamp"]),
                seconds(&e["Timestamp"]),
                "{wire:?}"
            );
            assert_eq!(
                (&g["Sum"], &g["Maximum"], &g["Unit"]),
                (&e["Sum"], &e["Maximum"], &e["Unit"]),
                "{wire:?}"
            );
        }
        assert_eq!(
            cli.sum("RequestCount", Some("empty")).await,
            2.0,
            "{wire:?}"
        );
        let latency = cli
            .statistics(
                "Latency",
                Some("web"),
                &["--extended-statistics", "p99", "--period", "3600"],
            )
            .await;
        assert!(
            latency.iter().all(|p| p["ExtendedStatistics"]["p99"]
                .as_f64()
                .is_some_and(|v| v >= 0.3)),
            "{wire:?}: {latency:?}"
        );
        let listed = cli
            .ok(&["list-metrics", "--metric-name", "HTTPCode_ELB_5XX"])
            .await;
        assert_eq!(
            listed["Metrics"].as_array().unwrap().len(),
            2,
            "{wire:?}: {listed}"
        );
        let queries = serde_json::json!([{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/ELB",
            "MetricName": "RequestCount", "Dimensions": [{"Name": "LoadBalancerName", "Value": "empty"}]},
            "Period": 60, "Stat": "Sum"}}])
        .to_string();
        let data = cli
            .ok(&[
                "get-metric-data",
                "--start-time",
                &start,
                "--end-time",
                &end,
                "--metric-data-queries",
                &queries,
            ])
            .await;
        let values = data["MetricDataResults"][0]["Values"].as_array().unwrap();
        assert_eq!(
            values.iter().map(|v| v.as_f64().unwrap()).sum::<f64>(),
            2.0,
            "{wire:?}: {data}"
        );
        refused_everywhere(&cli, &start, &end).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_calls_are_refused_in_the_callers_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let node = Serve::new(dir.path(), bind_address()).spawn_healthy().await;
    let api = node.api.unwrap();
    for (path, headers, body) in [
        (
            "/",
            vec![
                ("x-amz-target", "GraniteServiceVersion20100801.ListMetrics"),
                ("content-type", "application/x-amz-json-1.0"),
            ],
            b"{}".to_vec(),
        ),
        (
            "/service/GraniteServiceVersion20100801/operation/ListMetrics",
            vec![
                ("smithy-protocol", "rpc-v2-cbor"),
                ("content-type", "application/cbor"),
            ],
            vec![0xa0],
        ),
    ] {
        let mut req = http::Request::builder()
            .method(http::Method::POST)
            .uri(path)
            .header("host", api.to_string());
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let reply = fulcrum_testkit::Conn::http(api)
            .await
            .expect("connect to the API")
            .request(req)
            .await
            .expect("an answer");
        assert_eq!(reply.status, 403, "{path}: {}", reply.describe());
        let query_error = reply
            .response_header("x-amzn-query-error")
            .unwrap_or_default();
        assert!(
            query_error.ends_with(";Sender") && query_error.len() > ";Sender".len(),
            "{path}: {query_error:?}"
        );
    }
}
