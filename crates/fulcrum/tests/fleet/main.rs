//! A fleet: real `fulcrum serve` processes sharing one real etcd (Debian's etcd-server, on
//! loopback, started and stopped by the tests), driven with the AWS SDK. `service`: one service
//! on several nodes, etcd lost and found, nodes killed and restarted. `changes`: a rolling
//! upgrade, a node added and one drained, under traffic.

mod changes;
#[path = "../common/mod.rs"]
mod common;
mod service;
mod vip;

use std::net::SocketAddr;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_elasticloadbalancing as elb;
use aws_sdk_iam as iam;
use common::{bind_address, signed_call, Fulcrum, Serve};
use fulcrum_testkit::{eventually, Backend, Etcd};

const MASTER_KEY: &str = "5e1f0c1e5e1f0c1e5e1f0c1e5e1f0c1e5e1f0c1e5e1f0c1e5e1f0c1e5e1f0c1e";
const REGION: &str = "us-east-1";

/// Three nodes on one etcd, every one on its own loopback address and data dir.
struct Fleet {
    etcd: Etcd,
    nodes: Vec<Fulcrum>,
    dirs: Vec<tempfile::TempDir>,
    key: (String, String),
}

fn node(etcd: &Etcd, dir: &std::path::Path) -> Serve {
    Serve::new(dir, bind_address())
        .args(&["--store", &etcd.url()])
        .env("FULCRUM_MASTER_KEY", MASTER_KEY)
}

impl Fleet {
    async fn start(n: usize) -> Fleet {
        let etcd = Etcd::start();
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            // One after the other: the first writes the admin key the tests sign with.
            nodes.push(node(&etcd, dir.path()).spawn_healthy().await);
            dirs.push(dir);
        }
        let key = nodes[0].credentials();
        Fleet {
            etcd,
            nodes,
            dirs,
            key,
        }
    }

    fn api(&self, i: usize) -> SocketAddr {
        self.nodes[i].api.unwrap()
    }

    fn elb(&self, i: usize) -> elb::Client {
        let config = elb::Config::builder()
            .endpoint_url(format!("http://{}", self.api(i)))
            .region(elb::config::Region::new(REGION))
            .credentials_provider(Credentials::new(&self.key.0, &self.key.1, None, None, "t"))
            .behavior_version(elb::config::BehaviorVersion::latest())
            // Refusals are what some tests look at: no retry may hide them.
            .retry_config(elb::config::retry::RetryConfig::disabled())
            .build();
        elb::Client::from_conf(config)
    }

    fn iam(&self, i: usize) -> iam::Client {
        let config = iam::Config::builder()
            .endpoint_url(format!("http://{}", self.api(i)))
            .region(iam::config::Region::new(REGION))
            .credentials_provider(Credentials::new(&self.key.0, &self.key.1, None, None, "t"))
            .behavior_version(iam::config::BehaviorVersion::latest())
            .retry_config(iam::config::retry::RetryConfig::disabled())
            .build();
        iam::Client::from_conf(config)
    }

    /// `DescribeFleet` on node `i`, raw.
    async fn describe_fleet(&self, i: usize) -> String {
        let key = (self.key.0.as_str(), self.key.1.as_str());
        let reply = signed_call(
            self.api(i),
            key,
            "elasticloadbalancing",
            &[("Action", "DescribeFleet"), ("Version", "2012-06-01")],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.text()
    }

    /// Waits until node `i` says every one of `n` nodes has applied the latest revision.
    async fn wait_converged(&self, i: usize, n: usize) {
        let this = self;
        eventually(
            &format!("{n} nodes converged, as node {i} sees it"),
            Duration::from_secs(20),
            || async move {
                let xml = this.describe_fleet(i).await;
                xml.matches("<NodeId>").count() == n
                    && xml.matches("<Converged>true</Converged>").count() == n
            },
        )
        .await;
    }

    fn listener(&self, i: usize, port: u16) -> SocketAddr {
        SocketAddr::new(self.nodes[i].bind.unwrap(), port)
    }
}

/// A load balancer `name` with an HTTP listener on `port` and `backends` registered, with a
/// quick health check, made through node `i`.
async fn http_lb(f: &Fleet, i: usize, name: &str, port: u16, backends: &[Backend]) {
    let listener = listener("HTTP", port, backends[0].addr().port(), None);
    lb_with(f, i, name, listener, backends).await;
}

/// A load balancer `name` with `listener` and `backends` registered, with a quick health check,
/// made through node `i`.
async fn lb_with(
    f: &Fleet,
    i: usize,
    name: &str,
    listener: elb::types::Listener,
    backends: &[Backend],
) {
    let elb = f.elb(i);
    elb.create_load_balancer()
        .load_balancer_name(name)
        .listeners(listener)
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap();
    configure(&elb, name, backends).await;
}

/// A listener on `port` to the instances' `instance_port` over HTTP, with `certificate` (an
/// ARN) when `protocol` is HTTPS.
fn listener(
    protocol: &str,
    port: u16,
    instance_port: u16,
    certificate: Option<&str>,
) -> elb::types::Listener {
    elb::types::Listener::builder()
        .protocol(protocol)
        .load_balancer_port(i32::from(port))
        .instance_protocol("HTTP")
        .instance_port(i32::from(instance_port))
        .set_ssl_certificate_id(certificate.map(str::to_owned))
        .build()
        .unwrap()
}

async fn configure(elb: &elb::Client, name: &str, backends: &[Backend]) {
    elb.configure_health_check()
        .load_balancer_name(name)
        .health_check(
            elb::types::HealthCheck::builder()
                .target(format!("HTTP:{}/health", backends[0].addr().port()))
                .interval(5)
                .timeout(2)
                .healthy_threshold(2)
                .unhealthy_threshold(2)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut register = elb
        .register_instances_with_load_balancer()
        .load_balancer_name(name);
    for b in backends {
        register = register.instances(
            elb::types::Instance::builder()
                .instance_id(b.addr().ip().to_string())
                .build(),
        );
    }
    register.send().await.unwrap();
}

fn free_port() -> u16 {
    fulcrum_testkit::closed_port().port()
}
