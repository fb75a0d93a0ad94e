//! The Prometheus text exposition (format 0.0.4) of every load balancer's metrics. Names
//! follow Prometheus' conventions (base units, `_total` counters, a `load_balancer` label); each
//! family's help text names the `AWS/ELB` metric it stands for, so that dashboards built on
//! CloudWatch map over.
//!
//! Written by hand rather than with a client library: the counters are the data plane's own
//! atomics, bumped without a lock or a label lookup per request, and only read here.

use std::fmt::Write;

use crate::metrics::{Counter, HistogramSnapshot, LbMetrics, TlsVersion};
use crate::Registry;

/// What the node counts outside any load balancer.
#[derive(Debug, Clone, Default)]
pub struct NodeStats {
    /// Client connections open on the node.
    pub open_connections: u64,
    /// Client connections reset at accept because a connection limit was reached.
    pub refused_connections: u64,
    /// Access-log records dropped because the writer fell behind.
    pub access_log_dropped: u64,
}

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric, as Prometheus reads them.
pub fn encode(registry: &Registry, node: &NodeStats) -> String {
    let lbs = registry.all();
    let gauges = registry.gauges();
    let mut out = String::with_capacity(1024 + lbs.len() * 4096);

    let counter = |out: &mut String, name: &str, help: &str, get: &dyn Fn(&LbMetrics) -> u64| {
        family(out, name, help, "counter");
        for (lb, m) in &lbs {
            let _ = writeln!(out, "{name}{{load_balancer=\"{}\"}} {}", escape(lb), get(m));
        }
    };
    counter(
        &mut out,
        "fulcrum_requests_total",
        "Requests completed or attempted; for TCP and SSL listeners, connections made to an instance (AWS/ELB RequestCount).",
        &|m| m.requests.get(),
    );

    family(
        &mut out,
        "fulcrum_elb_responses_total",
        "Answers the balancer made itself, by status class (AWS/ELB HTTPCode_ELB_4XX, HTTPCode_ELB_5XX).",
        "counter",
    );
    for (lb, m) in &lbs {
        for (class, c) in [("4xx", &m.elb_4xx), ("5xx", &m.elb_5xx)] {
            labelled(
                &mut out,
                "fulcrum_elb_responses_total",
                lb,
                "code_class",
                class,
                c,
            );
        }
    }

    family(
        &mut out,
        "fulcrum_backend_responses_total",
        "Answers of the instances, by status class (AWS/ELB HTTPCode_Backend_2XX, _3XX, _4XX, _5XX).",
        "counter",
    );
    for (lb, m) in &lbs {
        for (class, c) in [
            ("2xx", &m.backend_2xx),
            ("3xx", &m.backend_3xx),
            ("4xx", &m.backend_4xx),
            ("5xx", &m.backend_5xx),
        ] {
            labelled(
                &mut out,
                "fulcrum_backend_responses_total",
                lb,
                "code_class",
                class,
                c,
            );
        }
    }

    counter(
        &mut out,
        "fulcrum_backend_connection_errors_total",
        "Connections to instances that could not be made (AWS/ELB BackendConnectionErrors).",
        &|m| m.backend_connection_errors.get(),
    );
    counter(
        &mut out,
        "fulcrum_spillover_total",
        "Requests refused because an instance's surge queue was full or its wait ran out (AWS/ELB SpilloverCount).",
        &|m| m.spillover.get(),
    );

    family(
        &mut out,
        "fulcrum_latency_seconds",
        "From sending a request to an instance until its response head arrived; for TCP and SSL listeners, the connect (AWS/ELB Latency).",
        "histogram",
    );
    for (lb, m) in &lbs {
        histogram(
            &mut out,
            "fulcrum_latency_seconds",
            lb,
            &m.latency.snapshot(),
        );
    }

    let gauge =
        |out: &mut String, name: &str, help: &str, get: &dyn Fn(&crate::LbGauges) -> u64| {
            family(out, name, help, "gauge");
            for g in &gauges {
                let _ = writeln!(
                    out,
                    "{name}{{load_balancer=\"{}\"}} {}",
                    escape(&g.load_balancer),
                    get(g)
                );
            }
        };
    gauge(
        &mut out,
        "fulcrum_healthy_hosts",
        "Registered instances in service (AWS/ELB HealthyHostCount).",
        &|g| g.healthy_hosts,
    );
    gauge(
        &mut out,
        "fulcrum_unhealthy_hosts",
        "Registered instances out of service (AWS/ELB UnHealthyHostCount).",
        &|g| g.unhealthy_hosts,
    );
    gauge(
        &mut out,
        "fulcrum_surge_queue_length",
        "Requests waiting now for a connection to a busy instance (AWS/ELB SurgeQueueLength).",
        &|g| g.surge_queue_length,
    );

    family(
        &mut out,
        "fulcrum_active_connections",
        "Client connections open now (ActiveConnectionCount, as Application Load Balancers name it).",
        "gauge",
    );
    for (lb, m) in &lbs {
        let _ = writeln!(
            out,
            "fulcrum_active_connections{{load_balancer=\"{}\"}} {}",
            escape(lb),
            m.active_connections.get()
        );
    }
    counter(
        &mut out,
        "fulcrum_connections_total",
        "Client connections accepted (NewConnectionCount, as Application Load Balancers name it).",
        &|m| m.new_connections.get(),
    );

    family(
        &mut out,
        "fulcrum_tls_handshakes_total",
        "TLS handshakes completed with clients, by protocol version and kind (full or resumed).",
        "counter",
    );
    for (lb, m) in &lbs {
        for version in TlsVersion::ALL {
            let counts = m.handshakes(version);
            for (kind, c) in [("full", &counts.full), ("resumed", &counts.resumed)] {
                let _ = writeln!(
                    out,
                    "fulcrum_tls_handshakes_total{{load_balancer=\"{}\",protocol=\"{}\",kind=\"{kind}\"}} {}",
                    escape(lb),
                    version.as_str(),
                    c.get()
                );
            }
        }
    }
    counter(
        &mut out,
        "fulcrum_tls_handshake_failures_total",
        "TLS handshakes with clients that failed or timed out (ClientTLSNegotiationErrorCount, as Application Load Balancers name it).",
        &|m| m.tls_failed.get(),
    );

    for (name, help, kind, value) in [
        (
            "fulcrum_node_open_connections",
            "Client connections open on the node, over every listener.",
            "gauge",
            node.open_connections,
        ),
        (
            "fulcrum_node_refused_connections_total",
            "Client connections reset at accept because a connection limit was reached.",
            "counter",
            node.refused_connections,
        ),
        (
            "fulcrum_access_log_dropped_total",
            "Access-log records dropped because the writer fell behind.",
            "counter",
            node.access_log_dropped,
        ),
    ] {
        family(&mut out, name, help, kind);
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn labelled(out: &mut String, name: &str, lb: &str, label: &str, value: &str, c: &Counter) {
    let _ = writeln!(
        out,
        "{name}{{load_balancer=\"{}\",{label}=\"{value}\"}} {}",
        escape(lb),
        c.get()
    );
}

/// Cumulative `le` buckets, `+Inf`, `_sum` and `_count`.
fn histogram(out: &mut String, name: &str, lb: &str, h: &HistogramSnapshot) {
    let lb = escape(lb);
    let mut cumulative = 0;
    for (bound, count) in h.bounds.iter().zip(&h.counts) {
        cumulative += count;
        let _ = writeln!(
            out,
            "{name}_bucket{{load_balancer=\"{lb}\",le=\"{bound}\"}} {cumulative}"
        );
    }
    cumulative += h.counts.last().copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "{name}_bucket{{load_balancer=\"{lb}\",le=\"+Inf\"}} {cumulative}"
    );
    let _ = writeln!(
        out,
        "{name}_sum{{load_balancer=\"{lb}\"}} {}",
        h.sum_seconds
    );
    let _ = writeln!(out, "{name}_count{{load_balancer=\"{lb}\"}} {}", h.count);
}

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_histogram_is_cumulative_and_ends_at_inf() {
        let registry = Registry::new(&[0.01, 0.1]).unwrap();
        let m = registry.lb("web");
        m.requests.add(3);
        for ms in [5, 50, 500] {
            m.latency.observe(Duration::from_millis(ms));
        }
        let text = encode(&registry, &NodeStats::default());
        assert!(text.contains("fulcrum_requests_total{load_balancer=\"web\"} 3\n"));
        assert!(
            text.contains("fulcrum_latency_seconds_bucket{load_balancer=\"web\",le=\"0.01\"} 1\n")
        );
        assert!(
            text.contains("fulcrum_latency_seconds_bucket{load_balancer=\"web\",le=\"0.1\"} 2\n")
        );
        assert!(
            text.contains("fulcrum_latency_seconds_bucket{load_balancer=\"web\",le=\"+Inf\"} 3\n")
        );
        assert!(text.contains("fulcrum_latency_seconds_count{load_balancer=\"web\"} 3\n"));
        assert!(text.contains("# TYPE fulcrum_latency_seconds histogram\n"));
    }
}
