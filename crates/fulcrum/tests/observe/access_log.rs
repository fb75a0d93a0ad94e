//! Access logs end to end: a real `fulcrum serve` (its EmitInterval minute shortened to 0.6 s,
//! so that a 5-minute file is published every 3 s), logging turned on with the real aws CLI,
//! traffic on HTTP, HTTPS, TCP and SSL listeners, a 503 and a malformed request; the files
//! checked for ELB's layout and names, their lines field by field, and the whole read by
//! GoAccess (Debian's `goaccess`, which `scripts/test` installs) with the Classic ELB format in
//! its own syntax. Then the live tail, `fulcrum lb logs --follow`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fulcrum_testkit::{client_tls_config, eventually, http_get, https_get, raw_exchange, TestCa};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{
    aws_cli, backends_on_one_port, bind_address, signed_call, wait_in_service, Fulcrum, Serve,
};

/// `--access-log-time-scale`: a minute of EmitInterval lasts 0.6 s, 5 minutes 3 s.
const LOG_TIME_SCALE: &str = "100";
/// Upper bound for what the writer publishes: a few intervals.
const FILES_TIMEOUT: Duration = Duration::from_secs(20);
const ACCOUNT: &str = "000000000000";
const USER_AGENT: &str = "observe-test/1";
/// The GoAccess log format of a Classic ELB line: the date and time of the timestamp (its
/// microseconds skipped), the client's address without its port, the backend processing time
/// as the time served, the ELB status code, the bytes sent, the request, the user agent and the
/// TLS cipher and protocol. Skipped: the name, the backend, the two other times, the backend's
/// status and the bytes received.
const GOACCESS_FORMAT: &str = r#"%dT%t.%^ %^ %h:%^ %^ %^ %T %^ %s %^ %^ %b "%r" "%u" %k %K"#;

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|p| p.exists())
}

/// Runs `aws --endpoint-url ... ARGS` as the node's admin and returns its JSON output.
async fn aws(node: &Fulcrum, args: &[&str]) -> Value {
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
        .unwrap_or_else(|_| panic!("aws {args:?} timed out"))
        .expect("run the aws CLI");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("aws {args:?}: no JSON ({e}): {stdout}"))
}

/// A `fulcrum` client command against `node` (with the credentials it wrote).
fn fulcrum_cli(node: &Fulcrum, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fulcrum"));
    cmd.args(args)
        .arg("--endpoint")
        .arg(format!("http://{}", node.api.unwrap()))
        .arg("--credentials")
        .arg(node.data_dir.as_ref().unwrap().join("credentials"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_REGION")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env_remove("FULCRUM_ENDPOINT")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs a `fulcrum` client command to its end: (success, stdout, stderr).
async fn fulcrum_run(node: &Fulcrum, args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), fulcrum_cli(node, args).output())
        .await
        .unwrap_or_else(|_| panic!("fulcrum {args:?} timed out"))
        .expect("run the fulcrum CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The fields of a Classic ELB line, quoted ones without their quotes.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.trim_end_matches('\n').chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut field = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => field.extend(chars.next()),
                    '"' => break,
                    c => field.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        out.push(field);
    }
    out
}

/// Every file under `root`, relative, with its text.
fn files_under(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                out.insert(path.strip_prefix(root).unwrap().to_owned(), text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The published log files of `lb` (relative path, text).
fn log_files(root: &Path, lb: &str) -> Vec<(PathBuf, String)> {
    let marker = format!("_elasticloadbalancing_us-east-1_{lb}_");
    files_under(root)
        .into_iter()
        .filter(|(path, _)| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(&marker))
        })
        .collect()
}

/// Checks one published file's place and name against ELB's layout: the directories' date is
/// the date of the end time in the name.
fn check_layout(path: &Path, lb: &str, node_ip: IpAddr) {
    let text = path.to_str().unwrap();
    let parts: Vec<&str> = text.split('/').collect();
    assert_eq!(
        &parts[..5],
        ["p", "AWSLogs", ACCOUNT, "elasticloadbalancing", "us-east-1"],
        "{text}"
    );
    assert_eq!(parts.len(), 9, "{text}");
    let (year, month, day, name) = (parts[5], parts[6], parts[7], parts[8]);
    let rest = name
        .strip_prefix(&format!("{ACCOUNT}_elasticloadbalancing_us-east-1_{lb}_"))
        .and_then(|r| r.strip_suffix(".log"))
        .unwrap_or_else(|| panic!("{name} is not ELB's name for a file of {lb}"));
    let pieces: Vec<&str> = rest.split('_').collect();
    assert_eq!(pieces.len(), 3, "{name}");
    let (end, ip, random) = (pieces[0], pieces[1], pieces[2]);
    assert_eq!(end.len(), "20140215T2340Z".len(), "{name}");
    assert!(end.ends_with('Z') && &end[8..9] == "T", "{name}");
    assert_eq!(
        &end[..8],
        format!("{year}{month}{day}"),
        "{name}: the directories' date"
    );
    assert_eq!(ip, node_ip.to_string(), "{name}: the node's address");
    assert!(
        random.len() == 8
            && random
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{name}: the random string"
    );
}

fn assert_time(field: &str, what: &str) {
    let secs: f64 = field
        .parse()
        .unwrap_or_else(|_| panic!("{what}: '{field}' is not seconds"));
    assert!(secs >= 0.0, "{what}: {field}");
    assert_eq!(
        field.split('.').nth(1).map(str::len),
        Some(6),
        "{what}: {field} has six decimals"
    );
}

fn assert_timestamp(field: &str) {
    let b = field.as_bytes();
    assert_eq!(b.len(), "2015-05-13T23:39:43.945958Z".len(), "{field}");
    assert!(
        b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && b[26] == b'Z',
        "{field}"
    );
}

fn assert_loopback_client(field: &str) {
    let addr: SocketAddr = field
        .parse()
        .unwrap_or_else(|_| panic!("client:port '{field}'"));
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{field}");
}

fn assert_tls(f: &[String]) {
    assert!(
        ["TLSv1.2", "TLSv1.3"].contains(&f[14].as_str()),
        "ssl_protocol {}",
        f[14]
    );
    assert!(f[13] != "-" && !f[13].is_empty(), "ssl_cipher {}", f[13]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_files_in_elbs_layout_and_format_read_by_goaccess() {
    let goaccess = find_in_path("goaccess").expect(
        "goaccess: run scripts/test (it installs Debian's goaccess) or apt-get install goaccess",
    );
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let mut node = Serve::new(dir.path(), bind)
        .args(&["--access-log-time-scale", LOG_TIME_SCALE])
        .spawn_healthy()
        .await;
    let root = dir.path().join("access-logs");

    let ca = TestCa::new("access log test CA");
    let (cert, key) = ca.issue(&["www.example.test"]);
    let pem = tempfile::tempdir().unwrap();
    std::fs::write(pem.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(pem.path().join("key.pem"), &key).unwrap();
    let file_arg = |name: &str| format!("file://{}", pem.path().join(name).display());
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
    .await;
    let arn = uploaded["ServerCertificateMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned();

    let (backends, iport) = backends_on_one_port(1).await;
    let instance = backends[0].addr();
    let port = || fulcrum_testkit::closed_port().port();
    let (http_port, https_port, tcp_port, ssl_port, empty_port) =
        (port(), port(), port(), port(), port());
    let listeners = [
        format!("Protocol=HTTP,LoadBalancerPort={http_port},InstanceProtocol=HTTP,InstancePort={iport}"),
        format!("Protocol=HTTPS,LoadBalancerPort={https_port},InstanceProtocol=HTTP,InstancePort={iport},SSLCertificateId={arn}"),
        format!("Protocol=TCP,LoadBalancerPort={tcp_port},InstanceProtocol=TCP,InstancePort={iport}"),
        format!("Protocol=SSL,LoadBalancerPort={ssl_port},InstanceProtocol=TCP,InstancePort={iport},SSLCertificateId={arn}"),
    ];
    let mut args = vec!["elb", "create-load-balancer", "--load-balancer-name", "web"];
    args.push("--listeners");
    args.extend(listeners.iter().map(String::as_str));
    args.extend(["--availability-zones", "us-east-1a"]);
    aws(&node, &args).await;
    let health = format!(
        "Target=HTTP:{iport}/health,Interval=5,Timeout=2,UnhealthyThreshold=2,HealthyThreshold=2"
    );
    aws(
        &node,
        &[
            "elb",
            "configure-health-check",
            "--load-balancer-name",
            "web",
            "--health-check",
            &health,
        ],
    )
    .await;
    let instance_id = instance.ip().to_string();
    aws(
        &node,
        &[
            "elb",
            "register-instances-with-load-balancer",
            "--load-balancer-name",
            "web",
            "--instances",
            &instance_id,
        ],
    )
    .await;
    // A load balancer with no instance: its requests are 503s.
    let empty_listener = format!(
        "Protocol=HTTP,LoadBalancerPort={empty_port},InstanceProtocol=HTTP,InstancePort={iport}"
    );
    aws(
        &node,
        &[
            "elb",
            "create-load-balancer",
            "--load-balancer-name",
            "empty",
            "--listeners",
            &empty_listener,
            "--availability-zones",
            "us-east-1a",
        ],
    )
    .await;
    let http = SocketAddr::new(bind, http_port);
    // Before logging is on: these requests are in no file.
    wait_in_service(http).await;

    let attributes = r#"{"AccessLog":{"Enabled":true,"EmitInterval":5,"S3BucketName":"logs","S3BucketPrefix":"p"}}"#;
    for lb in ["web", "empty"] {
        aws(
            &node,
            &[
                "elb",
                "modify-load-balancer-attributes",
                "--load-balancer-name",
                lb,
                "--load-balancer-attributes",
                attributes,
            ],
        )
        .await;
    }
    let described = aws(
        &node,
        &[
            "elb",
            "describe-load-balancer-attributes",
            "--load-balancer-name",
            "web",
        ],
    )
    .await;
    let log = &described["LoadBalancerAttributes"]["AccessLog"];
    assert_eq!(log["Enabled"], true, "{described}");
    assert_eq!(log["EmitInterval"], 5, "{described}");
    assert_eq!(log["S3BucketName"], "logs", "{described}");
    assert_eq!(log["S3BucketPrefix"], "p", "{described}");

    // ELB writes a test file when logging is turned on.
    let test_file = root.join(format!("p/AWSLogs/{ACCOUNT}/ELBAccessLogTestFile"));
    eventually("the access-log test file", FILES_TIMEOUT, || async {
        test_file.exists()
    })
    .await;
    let text = std::fs::read_to_string(&test_file).unwrap();
    assert!(
        text.starts_with("Enable AccessLog for ELB: "),
        "the test file says {text:?}"
    );
    // The data plane has the new attributes once a request of it reaches the tail.
    let creds = node.credentials();
    let creds = (creds.0.as_str(), creds.1.as_str());
    eventually("requests of web logged", FILES_TIMEOUT, || async {
        let _ = http_get(http, "/probe", &[]).await;
        let tail = signed_call(
            node.api.unwrap(),
            creds,
            "elasticloadbalancing",
            &[
                ("Action", "GetAccessLogTail"),
                ("Version", "2012-06-01"),
                ("LoadBalancerName", "web"),
            ],
        )
        .await;
        tail.status == 200 && tail.text().contains("/probe HTTP/1.1")
    })
    .await;

    // One request of each kind.
    let reply = http_get(http, "/http?x=1", &[("user-agent", USER_AGENT)])
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let http_sent = reply.body.len();
    let tls = client_tls_config(&ca.cert_pem(), &[b"http/1.1"]);
    let https = SocketAddr::new(bind, https_port);
    let reply = https_get(
        https,
        "www.example.test",
        tls.clone(),
        "/https",
        &[("user-agent", USER_AGENT)],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    let reply = http_get(SocketAddr::new(bind, tcp_port), "/tcp", &[])
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "through the TCP listener");
    let reply = https_get(
        SocketAddr::new(bind, ssl_port),
        "www.example.test",
        client_tls_config(&ca.cert_pem(), &[]),
        "/ssl",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "through the SSL listener");
    let reply = http_get(
        SocketAddr::new(bind, empty_port),
        "/none",
        &[("user-agent", USER_AGENT)],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 503, "no instance");
    let answer = raw_exchange(http, b"NOT A REQUEST\r\n\r\n", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // The files: complete, at the interval, under ELB's names.
    let lines_of = |lb: &str| -> Vec<String> {
        log_files(&root, lb)
            .into_iter()
            .flat_map(|(_, text)| text.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    };
    let is_tcp = |f: &Vec<String>| f[7] == "-" && f[13] == "-";
    let is_ssl = |f: &Vec<String>| f[7] == "-" && f[13] != "-";
    eventually(
        "every request in a published file",
        FILES_TIMEOUT,
        || async {
            let web: Vec<Vec<String>> = lines_of("web").iter().map(|l| fields(l)).collect();
            let has = |path: &str| web.iter().any(|f| f.len() == 15 && f[11].contains(path));
            has("/http?x=1 ")
                && has("/https ")
                && web.iter().any(|f| f.len() == 15 && f[7] == "400")
                && web.iter().any(|f| f.len() == 15 && is_tcp(f))
                && web.iter().any(|f| f.len() == 15 && is_ssl(f))
                && lines_of("empty").iter().any(|l| l.contains("/none "))
        },
    )
    .await;

    let web: Vec<Vec<String>> = lines_of("web").iter().map(|l| fields(l)).collect();
    for f in &web {
        assert_eq!(f.len(), 15, "{f:?}");
        assert_timestamp(&f[0]);
        assert_eq!(f[1], "web");
        assert_loopback_client(&f[2]);
    }
    let one = |what: &str, pick: &dyn Fn(&Vec<String>) -> bool| -> Vec<String> {
        let found: Vec<_> = web.iter().filter(|f| pick(f)).collect();
        assert_eq!(found.len(), 1, "{what}: {web:?}");
        found[0].clone()
    };

    let f = one("the HTTP request", &|f| f[11].contains("/http?x=1 "));
    assert_eq!(f[3], instance.to_string(), "backend:port");
    for (i, what) in [
        (4, "request_processing_time"),
        (5, "backend_processing_time"),
        (6, "response_processing_time"),
    ] {
        assert_time(&f[i], what);
    }
    assert_eq!((f[7].as_str(), f[8].as_str()), ("200", "200"));
    assert_eq!(f[9], "0", "received_bytes: no body");
    assert_eq!(f[10], http_sent.to_string(), "sent_bytes: the body");
    assert_eq!(
        f[11],
        format!("GET http://{bind}:{http_port}/http?x=1 HTTP/1.1")
    );
    assert_eq!(f[12], USER_AGENT);
    assert_eq!((f[13].as_str(), f[14].as_str()), ("-", "-"));

    let f = one("the HTTPS request", &|f| f[11].contains("/https "));
    assert_eq!(f[3], instance.to_string());
    assert_eq!((f[7].as_str(), f[8].as_str()), ("200", "200"));
    assert!(
        f[11].starts_with("GET https://")
            && f[11].ends_with(&format!(":{https_port}/https HTTP/1.1")),
        "{}",
        f[11]
    );
    assert_eq!(f[12], USER_AGENT);
    assert_tls(&f);

    for (what, pick) in [
        (
            "the TCP connection",
            &is_tcp as &dyn Fn(&Vec<String>) -> bool,
        ),
        ("the SSL connection", &is_ssl),
    ] {
        let f = one(what, pick);
        assert_eq!(f[3], instance.to_string(), "{what}");
        for time in &f[4..=6] {
            assert_time(time, what);
        }
        assert_eq!((f[7].as_str(), f[8].as_str()), ("-", "-"), "{what}");
        let received: u64 = f[9].parse().unwrap();
        let sent: u64 = f[10].parse().unwrap();
        assert!(
            received > 0 && sent > 0,
            "{what}: every byte either way: {f:?}"
        );
        assert_eq!(f[11], "- - - ", "{what}");
        assert_eq!(f[12], "-", "{what}");
    }
    assert_tls(&one("the SSL connection", &is_ssl));

    let f = one("the malformed request", &|f| f[7] == "400");
    assert_eq!(f[3], "-", "no instance got it");
    assert_eq!(
        (f[4].as_str(), f[5].as_str(), f[6].as_str()),
        ("-1", "-1", "-1")
    );
    assert_eq!(f[8], "0", "no status from an instance");
    assert_eq!(f[11], "- - - ", "it could not be read as a request");

    let empty: Vec<Vec<String>> = lines_of("empty").iter().map(|l| fields(l)).collect();
    assert_eq!(empty.len(), 1, "{empty:?}");
    let f = &empty[0];
    assert_eq!(f[1], "empty");
    assert_eq!(f[3], "-", "no instance");
    assert_eq!(
        (f[4].as_str(), f[5].as_str(), f[6].as_str()),
        ("-1", "-1", "-1")
    );
    assert_eq!((f[7].as_str(), f[8].as_str()), ("503", "0"));
    assert_eq!(
        f[11],
        format!("GET http://{bind}:{empty_port}/none HTTP/1.1")
    );
    assert_eq!(f[12], USER_AGENT);

    // Files every interval, empty ones too (ELB publishes one per node per interval), each
    // under ELB's name; the tree holds nothing else.
    let published = log_files(&root, "empty").len();
    eventually("a file for a quiet interval", FILES_TIMEOUT, || async {
        log_files(&root, "empty").len() >= published + 2
    })
    .await;
    assert!(
        log_files(&root, "empty")
            .iter()
            .any(|(_, text)| text.is_empty()),
        "quiet intervals publish empty files"
    );
    let all = files_under(&root);
    for path in all.keys() {
        if path == Path::new(&format!("p/AWSLogs/{ACCOUNT}/ELBAccessLogTestFile")) {
            continue;
        }
        let lb = if path.to_str().unwrap().contains("_web_") {
            "web"
        } else {
            "empty"
        };
        check_layout(path, lb, bind);
    }
    assert!(
        log_files(&root, "web").len() >= 2,
        "web's files: {:?}",
        all.keys()
    );

    // GoAccess reads every line.
    let combined = dir.path().join("all.log");
    let text: String = log_files(&root, "web")
        .into_iter()
        .chain(log_files(&root, "empty"))
        .map(|(_, text)| text)
        .collect();
    let lines = text.lines().count();
    std::fs::write(&combined, &text).unwrap();
    let report = dir.path().join("report.json");
    let out = tokio::process::Command::new(&goaccess)
        .arg(&combined)
        .arg(format!("--log-format={GOACCESS_FORMAT}"))
        .args(["--date-format=%Y-%m-%d", "--time-format=%H:%M:%S"])
        // TCP and SSL lines have no status code (`-`).
        .arg("--no-strict-status")
        .arg("--no-global-config")
        .arg("-o")
        .arg(&report)
        .output()
        .await
        .expect("run goaccess");
    assert!(
        out.status.success(),
        "goaccess failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let general = &report["general"];
    assert_eq!(general["total_requests"], lines, "{general}");
    assert_eq!(general["valid_requests"], lines, "{general}");
    assert_eq!(general["failed_requests"], 0, "{general}");
    let count = |panel: &str, data: &str| -> u64 {
        report[panel]["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["data"] == data)
            .map(|d| d["hits"]["count"].as_u64().unwrap())
            .sum()
    };
    let ok = web.iter().filter(|f| f[7] == "200").count() as u64;
    assert_eq!(
        count("status_codes", "2xx Success"),
        ok,
        "{}",
        report["status_codes"]
    );
    assert_eq!(count("status_codes", "4xx Client Errors"), 1);
    assert_eq!(count("status_codes", "5xx Server Errors"), 1);
    assert_eq!(
        count("requests", &format!("http://{bind}:{http_port}/http?x=1")),
        1,
        "{}",
        report["requests"]
    );
    assert_eq!(
        count("hosts", "127.0.0.1"),
        lines as u64,
        "{}",
        report["hosts"]
    );
    assert_eq!(
        count("tls_type", "TLSv1.3") + count("tls_type", "TLSv1.2"),
        2
    );

    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_logs_follow_shows_requests_made_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let mut node = Serve::new(dir.path(), bind).spawn_healthy().await;
    let (_backends, iport) = backends_on_one_port(1).await;
    let port = fulcrum_testkit::closed_port().port();
    let (ok, out, err) = fulcrum_run(
        &node,
        &[
            "lb",
            "create",
            "--name",
            "web",
            "--listener",
            &format!("HTTP:{port}:HTTP:{iport}"),
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let target = format!("HTTP:{iport}/health");
    let (ok, out, err) = fulcrum_run(
        &node,
        &[
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
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let instance = _backends[0].addr().ip().to_string();
    let (ok, out, err) = fulcrum_run(&node, &["lb", "register", "--name", "web", &instance]).await;
    assert!(ok, "{out}{err}");
    let addr = SocketAddr::new(bind, port);
    wait_in_service(addr).await;

    // Logging is off and nobody follows: requests make no record.
    let (ok, out, err) = fulcrum_run(&node, &["lb", "logs", "--name", "web"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "", "nothing is recorded yet");

    let mut follow = fulcrum_cli(&node, &["lb", "logs", "--name", "web", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fulcrum lb logs --follow");
    let mut printed = BufReader::new(follow.stdout.take().unwrap()).lines();
    // The follow is registered at some point after the start: requests until one shows.
    let mut shown = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for i in 0.. {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no request showed in the follow"
        );
        let path = format!("/followed-{i}");
        assert_eq!(http_get(addr, &path, &[]).await.unwrap().status, 200);
        if let Ok(line) =
            tokio::time::timeout(Duration::from_millis(500), printed.next_line()).await
        {
            let line = line.unwrap().expect("the follow printed a line");
            shown = Some((i, line));
            break;
        }
    }
    let (i, line) = shown.unwrap();
    let f = fields(&line);
    assert_eq!(f.len(), 15, "{line}");
    assert_eq!(f[1], "web");
    assert_eq!(
        f[11],
        format!("GET http://{bind}:{port}/followed-{i} HTTP/1.1")
    );
    // And the next ones, in order.
    for j in 1..=3 {
        let path = format!("/after-{j}");
        http_get(addr, &path, &[]).await.unwrap();
        let line = tokio::time::timeout(Duration::from_secs(10), printed.next_line())
            .await
            .expect("the next line within 10 s")
            .unwrap()
            .unwrap();
        assert!(line.contains(&format!("{path} HTTP/1.1")), "{line}");
    }
    // No file: logging is off.
    assert!(files_under(&dir.path().join("access-logs")).is_empty());

    // The recent lines without --follow, and with a read-only key.
    let (ok, out, err) = fulcrum_run(&node, &["lb", "logs", "--name", "web", "--lines", "2"]).await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.ends_with("/after-3 HTTP/1.1\" \"-\" - -\n"), "{out}");
    let (ok, out, err) = fulcrum_run(
        &node,
        &["key", "create", "--scope", "read-only", "--output", "json"],
    )
    .await;
    assert!(ok, "{err}");
    let key: Value = serde_json::from_str(&out).unwrap();
    let key = &key["AccessKey"];
    let reply = signed_call(
        node.api.unwrap(),
        (
            key["AccessKeyId"].as_str().unwrap(),
            key["SecretAccessKey"].as_str().unwrap(),
        ),
        "elasticloadbalancing",
        &[("Action", "GetAccessLogTail"), ("LoadBalancerName", "web")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().contains("/after-3 HTTP/1.1"));

    // An unknown load balancer is ELB's error.
    let (ok, _, err) = fulcrum_run(&node, &["lb", "logs", "--name", "nope", "--follow"]).await;
    assert!(!ok);
    assert!(err.contains("LoadBalancerNotFound"), "{err}");

    // Once the follower is gone, requests make no record again. The first request after it
    // went may still be recorded (writing its line is how the node notices); then none is.
    // Nothing signals that a record was not made: each try waits a few writer ticks.
    follow.kill().await.unwrap();
    let _ = follow.wait().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for n in 0.. {
        let path = format!("/unfollowed-{n}");
        http_get(addr, &path, &[]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, out, _) = fulcrum_run(&node, &["lb", "logs", "--name", "web"]).await;
        if !out.contains(&format!("{path} ")) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "records are still made for a follower that is gone"
        );
    }

    node.stop().await;
}
