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

use fulcrum_model::{Listener, Protocol};
use fulcrum_store::Store;

/// Load balancers `web` (HTTP, one instance) and `empty` (HTTP, no instance), written in the
/// store before the node starts.
pub fn seed_web_and_empty(dir: &Path, web: u16, empty: u16, instance: SocketAddr) {
    let store = Store::open(dir).expect("open the store");
    store
        .update(|state| {
            common::add_http_lb(state, "web", web, instance)?;
            let listener = Listener::new(Protocol::Http, empty, Protocol::Http, 80);
            state.create_load_balancer("empty", vec![listener], 0)
        })
        .expect("write the state");
}
