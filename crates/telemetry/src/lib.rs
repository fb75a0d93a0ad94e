//! What the balancer does, as operators of ELB know it: the `AWS/ELB` metrics (atomic counters
//! and latency histograms the data plane bumps per request, with no lock), and access-log
//! records in Classic ELB's format, handed off the request path to be written.
//!
//! The data plane only ever touches `metrics::LbMetrics` (atomics) and
//! `access_log::AccessLogSink::push` (a lock-free queue); everything that formats, writes,
//! aggregates or serves runs on tasks of its own.

#![forbid(unsafe_code)]

pub mod access_log;
pub mod metrics;
pub mod prometheus;

pub use metrics::{Histogram, LbGauges, LbMetrics, Registry};
