//! The node's own logs: `--log-format json` writes one JSON object per line, and each change of
//! state is one event with an `event` field: the API changes (with the access key that made
//! them), listeners opened, instances going in and out of service (with the reason).

use std::net::SocketAddr;

use fulcrum_testkit::Backend;

use crate::common::{backends_on_one_port, bind_address, signed_call, Serve};

fn events(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"))
        })
        .collect()
}

fn find<'a>(all: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    all.iter().filter(|e| e["event"] == event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_event_per_change_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let bind = bind_address();
    let (backends, instance_port) = backends_on_one_port(1).await;
    let backend: &Backend = &backends[0];
    let mut node = Serve::new(dir.path(), bind)
        .args(&["--log-format", "json", "--log-level", "info"])
        .spawn_healthy()
        .await;
    let (key, secret) = node.credentials();
    let api = node.api.unwrap();
    let port = fulcrum_testkit::closed_port().port().to_string();
    let instance_port = instance_port.to_string();
    let instance_id = backend.addr().ip().to_string();
    let target = format!("HTTP:{instance_port}/health");
    let calls: [&[(&str, &str)]; 3] = [
        &[
            ("Action", "CreateLoadBalancer"),
            ("Version", "2012-06-01"),
            ("LoadBalancerName", "web"),
            ("AvailabilityZones.member.1", "us-east-1a"),
            ("Listeners.member.1.Protocol", "HTTP"),
            ("Listeners.member.1.LoadBalancerPort", &port),
            ("Listeners.member.1.InstanceProtocol", "HTTP"),
            ("Listeners.member.1.InstancePort", &instance_port),
        ],
        &[
            ("Action", "ConfigureHealthCheck"),
            ("Version", "2012-06-01"),
            ("LoadBalancerName", "web"),
            ("HealthCheck.Target", &target),
            ("HealthCheck.Interval", "5"),
            ("HealthCheck.Timeout", "2"),
            ("HealthCheck.HealthyThreshold", "2"),
            ("HealthCheck.UnhealthyThreshold", "2"),
        ],
        &[
            ("Action", "RegisterInstancesWithLoadBalancer"),
            ("Version", "2012-06-01"),
            ("LoadBalancerName", "web"),
            ("Instances.member.1.InstanceId", &instance_id),
        ],
    ];
    for form in calls {
        let reply = signed_call(api, (&key, &secret), "elasticloadbalancing", form).await;
        assert_eq!(reply.status, 200, "{}", reply.describe());
    }
    node.wait_stderr("instance_in_service").await;
    backend.set_healthy(false);
    node.wait_stderr("instance_out_of_service").await;

    let text = node.stderr_now();
    assert!(!text.contains(&secret), "a log line holds the secret key");
    let all = events(&text);

    let changes = find(&all, "api_change");
    let actions: Vec<&str> = changes
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        actions,
        [
            "CreateLoadBalancer",
            "ConfigureHealthCheck",
            "RegisterInstancesWithLoadBalancer"
        ]
    );
    assert!(changes.iter().all(|e| e["access_key"] == key.as_str()));
    assert!(changes.iter().all(|e| e["outcome"] == "ok"));

    let opened = find(&all, "listener_opened");
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["port"].to_string(), port);

    let up = find(&all, "instance_in_service");
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["load_balancer"], "web");
    assert_eq!(up[0]["instance"], instance_id.as_str());
    let down = find(&all, "instance_out_of_service");
    assert_eq!(down[0]["level"], "WARN");
    assert!(
        down[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("503")),
        "the reason names what the check saw: {:?}",
        down[0]
    );
    let addr: SocketAddr = down[0]["addr"].as_str().unwrap().parse().unwrap();
    assert_eq!(addr.ip(), backend.addr().ip());
}

#[test]
fn a_log_level_that_is_not_one_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["key", "list", "--log-level", "loud"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--log-level"), "{stderr}");
}
