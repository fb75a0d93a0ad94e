//! The metrics of the `AWS/ELB` namespace that fulcrum publishes: their names as CloudWatch
//! spells them, their units, and what one sample of each is (which decides what Minimum,
//! Maximum and SampleCount mean).

/// One metric of a load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    RequestCount,
    Latency,
    HttpCodeElb4xx,
    HttpCodeElb5xx,
    HttpCodeBackend2xx,
    HttpCodeBackend3xx,
    HttpCodeBackend4xx,
    HttpCodeBackend5xx,
    BackendConnectionErrors,
    HealthyHostCount,
    UnHealthyHostCount,
    SurgeQueueLength,
    SpilloverCount,
    // Application Load Balancer's names for what a TLS-terminating balancer also counts.
    ActiveConnectionCount,
    NewConnectionCount,
    ClientTlsNegotiationErrorCount,
}

/// The unit a metric is published in (CloudWatch's `StandardUnit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
        }
    }
}

/// What one sample of a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Each event is a sample of 1 (ELB: "Minimum, Maximum and Average are all 1"): a minute
    /// of n events has Sum n and SampleCount n.
    Events,
    /// The node's count over the minute is one sample (ELB reports BackendConnectionErrors
    /// and SpilloverCount per node): Sum, Minimum and Maximum are the count, SampleCount 1.
    NodeCount,
    /// One sample per request measured, in seconds, with a histogram for percentiles.
    Latency,
    /// A level read several times a minute (HealthyHostCount): each reading is a sample.
    Gauge,
}

impl Metric {
    pub const ALL: [Metric; 16] = [
        Metric::RequestCount,
        Metric::Latency,
        Metric::HttpCodeElb4xx,
        Metric::HttpCodeElb5xx,
        Metric::HttpCodeBackend2xx,
        Metric::HttpCodeBackend3xx,
        Metric::HttpCodeBackend4xx,
        Metric::HttpCodeBackend5xx,
        Metric::BackendConnectionErrors,
        Metric::HealthyHostCount,
        Metric::UnHealthyHostCount,
        Metric::SurgeQueueLength,
        Metric::SpilloverCount,
        Metric::ActiveConnectionCount,
        Metric::NewConnectionCount,
        Metric::ClientTlsNegotiationErrorCount,
    ];

    /// The name in the `AWS/ELB` namespace.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RequestCount => "RequestCount",
            Metric::Latency => "Latency",
            Metric::HttpCodeElb4xx => "HTTPCode_ELB_4XX",
            Metric::HttpCodeElb5xx => "HTTPCode_ELB_5XX",
            Metric::HttpCodeBackend2xx => "HTTPCode_Backend_2XX",
            Metric::HttpCodeBackend3xx => "HTTPCode_Backend_3XX",
            Metric::HttpCodeBackend4xx => "HTTPCode_Backend_4XX",
            Metric::HttpCodeBackend5xx => "HTTPCode_Backend_5XX",
            Metric::BackendConnectionErrors => "BackendConnectionErrors",
            Metric::HealthyHostCount => "HealthyHostCount",
            Metric::UnHealthyHostCount => "UnHealthyHostCount",
            Metric::SurgeQueueLength => "SurgeQueueLength",
            Metric::SpilloverCount => "SpilloverCount",
            Metric::ActiveConnectionCount => "ActiveConnectionCount",
            Metric::NewConnectionCount => "NewConnectionCount",
            Metric::ClientTlsNegotiationErrorCount => "ClientTLSNegotiationErrorCount",
        }
    }

    /// The metric CloudWatch calls `name` (case matters, as in CloudWatch).
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::Latency => Unit::Seconds,
            _ => Unit::Count,
        }
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Metric::RequestCount
            | Metric::HttpCodeElb4xx
            | Metric::HttpCodeElb5xx
            | Metric::HttpCodeBackend2xx
            | Metric::HttpCodeBackend3xx
            | Metric::HttpCodeBackend4xx
            | Metric::HttpCodeBackend5xx => Kind::Events,
            Metric::BackendConnectionErrors
            | Metric::SpilloverCount
            | Metric::NewConnectionCount
            | Metric::ClientTlsNegotiationErrorCount => Kind::NodeCount,
            Metric::Latency => Kind::Latency,
            Metric::HealthyHostCount
            | Metric::UnHealthyHostCount
            | Metric::SurgeQueueLength
            | Metric::ActiveConnectionCount => Kind::Gauge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(m));
        }
        assert_eq!(Metric::from_name("requestcount"), None, "case matters");
        let mut names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
    }
}
