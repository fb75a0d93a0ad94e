//! What an operator sees of a running `fulcrum serve`: ELB's access logs, the Prometheus
//! endpoint, the CloudWatch API for `AWS/ELB`, and the node's own logs. One test binary for the
//! area (one link); each part in its own module.

#[path = "../common/mod.rs"]
mod common;

mod access_log;
mod cloudwatch;
mod logs;
mod prometheus;
