//! What an operator sees of a running `fulcrum serve`: ELB's access logs, the Prometheus
//! endpoint, the CloudWatch API for `AWS/ELB`, and the node's own logs. One test binary for the
//! area (one link); each part in its own module.

#[path = "../common/mod.rs"]
mod common;

mod access_log;
mod cloudwatch;
mod logs;
mod prometheus;

use std::net::SocketAddr;
use std::path::Path;

use fulcrum_model::{HealthCheck, InstanceId, Listener, Protocol};
use fulcrum_store::Store;

/// Load balancers `web` (HTTP, one instance) and `empty` (HTTP, no instance), written in the
/// store before the node starts.
pub fn seed_web_and_empty(dir: &Path, web: u16, empty: u16, instance: SocketAddr) {
    let store = Store::open(dir).expect("open the store");
    store
        .update(|state| {
            let listener = Listener::new(Protocol::Http, web, Protocol::Http, instance.port());
            state.create_load_balancer("web", vec![listener], 0)?;
            state.configure_health_check(
                "web",
                HealthCheck {
                    target: format!("HTTP:{}/health", instance.port()).parse()?,
                    interval_secs: 5,
                    timeout_secs: 2,
                    healthy_threshold: 2,
                    unhealthy_threshold: 2,
                },
            )?;
            state.register_instances("web", &[InstanceId::parse(&instance.ip().to_string())?])?;
            let listener = Listener::new(Protocol::Http, empty, Protocol::Http, 80);
            state.create_load_balancer("empty", vec![listener], 0)
        })
        .expect("write the state");
}
