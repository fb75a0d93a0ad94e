//! ListMetrics: the `AWS/ELB` metrics that have data in the series, each per load balancer
//! (dimension `LoadBalancerName`) and once without dimensions (all load balancers added up),
//! as ELB publishes them.

use fulcrum_telemetry::series::{Metric, Series, RETENTION};

use super::value::{Input, Shape, Value};
use super::{internal, NAMESPACE_ELB};
use crate::error::ApiError;

static DIMENSION_FILTER: Shape = Shape::Struct(&[("Name", Shape::Str), ("Value", Shape::Str)]);

pub(super) static LIST_METRICS: &[(&str, Shape)] = &[
    ("Namespace", Shape::Str),
    ("MetricName", Shape::Str),
    ("Dimensions", Shape::List(&DIMENSION_FILTER)),
    ("NextToken", Shape::Str),
    ("RecentlyActive", Shape::Str),
    ("IncludeLinkedAccounts", Shape::Bool),
    ("OwningAccount", Shape::Str),
];

/// Metrics in one answer, as CloudWatch pages them.
const PAGE: usize = 500;
/// `RecentlyActive=PT3H`: data in the last three hours.
const RECENT: i64 = 3 * 3600;

/// One metric as listed: its name and, unless it is the aggregate, its load balancer.
type Listed = (Metric, Option<String>);

pub(super) fn list_metrics(
    series: &Series,
    input: &Input<'_>,
    now: i64,
) -> Result<Value, ApiError> {
    let namespace = input.string("Namespace")?;
    let name = input.string("MetricName")?;
    let mut filters = Vec::new();
    for f in input.list("Dimensions")? {
        filters.push((f.required_string("Name")?, f.string("Value")?));
    }
    if filters.len() > 10 {
        return Err(ApiError::new(
            "InvalidParameterValue",
            "At most 10 Dimensions may be given.",
        ));
    }
    let since = match input.string("RecentlyActive")? {
        None => now - RETENTION.as_secs() as i64,
        Some("PT3H") => now - RECENT,
        Some(other) => {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!(
                    "The value {other} for parameter RecentlyActive is invalid: it must be PT3H."
                ),
            ))
        }
    };
    let skip = match input.string("NextToken")? {
        None => 0,
        Some(token) => token.parse::<usize>().map_err(|_| {
            ApiError::new(
                "InvalidNextToken",
                "The NextToken is not one this service handed out.",
            )
        })?,
    };

    let mut listed: Vec<Listed> = Vec::new();
    if namespace.is_none_or(|n| n == NAMESPACE_ELB) {
        for (lb, metric) in series.published(since).map_err(internal)? {
            listed.push((metric, None));
            listed.push((metric, Some(lb)));
        }
    }
    listed.retain(|(metric, lb)| {
        name.is_none_or(|n| n == metric.name())
            && filters.iter().all(|(dim, value)| {
                *dim == "LoadBalancerName"
                    && lb
                        .as_deref()
                        .is_some_and(|lb| value.is_none_or(|v| v == lb))
            })
    });
    listed.sort_by(|a, b| (a.0.name(), &a.1).cmp(&(b.0.name(), &b.1)));
    listed.dedup();
    if skip > listed.len() {
        return Err(ApiError::new(
            "InvalidNextToken",
            "The NextToken is not one this service handed out.",
        ));
    }
    let next = (listed.len() > skip + PAGE).then(|| (skip + PAGE).to_string());
    let metrics = listed
        .into_iter()
        .skip(skip)
        .take(PAGE)
        .map(|(metric, lb)| {
            let dimensions = lb
                .into_iter()
                .map(|lb| {
                    Value::structure([
                        ("Name", Some(Value::text("LoadBalancerName"))),
                        ("Value", Some(Value::Text(lb))),
                    ])
                })
                .collect();
            Value::structure([
                ("Namespace", Some(Value::text(NAMESPACE_ELB))),
                ("MetricName", Some(Value::text(metric.name()))),
                ("Dimensions", Some(Value::List(dimensions))),
            ])
        })
        .collect();
    Ok(Value::structure([
        ("Metrics", Some(Value::List(metrics))),
        ("NextToken", next.map(Value::Text)),
    ]))
}
