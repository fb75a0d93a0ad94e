//! The operations on a series driven by hand (the protocols have their own tests, and the
//! whole path is tested with the aws CLI in `crates/fulcrum/tests/observe/cloudwatch.rs`).

use std::sync::Arc;

use fulcrum_telemetry::series::Series;
use fulcrum_telemetry::Registry;

use super::value::Value;
use super::Operation;

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200;

/// `web` with 3 requests in the minute at T0 and 2 in the next, both closed.
fn series() -> (Arc<Registry>, Series) {
    let registry = Arc::new(Registry::default());
    let series = Series::in_memory_at(Arc::clone(&registry), T0).unwrap();
    registry.lb("web").requests.add(3);
    series.tick_at(T0 + 60).unwrap();
    registry.lb("web").requests.add(2);
    series.tick_at(T0 + 120).unwrap();
    (registry, series)
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::text(*s)).collect())
}

fn dimension(name: &str, value: &str) -> Value {
    Value::structure([
        ("Name", Some(Value::text(name))),
        ("Value", Some(Value::text(value))),
    ])
}

fn statistics_input(dimensions: Vec<Value>, unit: Option<&str>, end: i64) -> Value {
    Value::structure([
        ("Namespace", Some(Value::text("AWS/ELB"))),
        ("MetricName", Some(Value::text("RequestCount"))),
        ("Dimensions", Some(Value::List(dimensions))),
        ("StartTime", Some(Value::Time(T0 as f64))),
        ("EndTime", Some(Value::Time(end as f64))),
        ("Period", Some(Value::Int(60))),
        ("Statistics", Some(list(&["Sum"]))),
        ("Unit", unit.map(Value::text)),
    ])
}

/// The Sums of a GetMetricStatistics answer.
fn sums(output: &Value) -> Vec<f64> {
    let Value::Struct(members) = output else {
        panic!("{output:?}")
    };
    let Some((_, Value::List(points))) = members.iter().find(|(n, _)| n == "Datapoints") else {
        panic!("{output:?}")
    };
    points
        .iter()
        .map(|p| match p {
            Value::Struct(m) => match m.iter().find(|(n, _)| n == "Sum") {
                Some((_, Value::Float(f))) => *f,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn dimensions_and_units_choose_the_series() {
    let (_registry, series) = series();
    let run = |input: Value| {
        Operation::GetMetricStatistics
            .run(&series, &input, T0 + 120)
            .unwrap()
    };
    let web = || vec![dimension("LoadBalancerName", "web")];
    assert_eq!(
        sums(&run(statistics_input(web(), None, T0 + 120))),
        [3.0, 2.0]
    );
    assert_eq!(
        sums(&run(statistics_input(Vec::new(), None, T0 + 120))),
        [3.0, 2.0]
    );
    assert_eq!(
        sums(&run(statistics_input(web(), Some("Count"), T0 + 120))),
        [3.0, 2.0]
    );
    // Another unit, a dimension ELB has but fulcrum does not, another load balancer: no data.
    assert!(sums(&run(statistics_input(web(), Some("Seconds"), T0 + 120))).is_empty());
    let zone = vec![dimension("AvailabilityZone", "us-east-1a")];
    assert!(sums(&run(statistics_input(zone, None, T0 + 120))).is_empty());
    let other = vec![dimension("LoadBalancerName", "other")];
    assert!(sums(&run(statistics_input(other, None, T0 + 120))).is_empty());
}

#[test]
fn at_most_1440_datapoints() {
    let (_registry, series) = series();
    let run = |end| {
        Operation::GetMetricStatistics.run(&series, &statistics_input(Vec::new(), None, end), T0)
    };
    assert!(run(T0 + 1440 * 60).is_ok());
    let err = run(T0 + 1440 * 60 + 1).unwrap_err();
    assert_eq!(err.code, "InvalidParameterCombination");
    assert!(err.message.contains("1441 datapoints"), "{}", err.message);
    // Times and periods at the ends of their range are refused or answered, never overflow.
    let mut extreme = statistics_input(Vec::new(), None, 0);
    if let Value::Struct(members) = &mut extreme {
        for (name, v) in members.iter_mut() {
            match name.as_str() {
                "StartTime" => *v = Value::Time(-1e300),
                "EndTime" => *v = Value::Time(1e300),
                "Period" => *v = Value::Int(i64::MAX - 59),
                _ => {}
            }
        }
    }
    let err = Operation::GetMetricStatistics
        .run(&series, &extreme, T0)
        .unwrap_err();
    assert_eq!(
        err.code, "InvalidParameterValue",
        "not a multiple of 60: {}",
        err.message
    );
    if let Value::Struct(members) = &mut extreme {
        for (name, v) in members.iter_mut() {
            if name == "Period" {
                *v = Value::Int(i64::MAX / 60 * 60);
            }
        }
    }
    assert_eq!(
        sums(
            &Operation::GetMetricStatistics
                .run(&series, &extreme, T0)
                .unwrap()
        ),
        [5.0],
        "one period holds everything"
    );
    let err = Operation::GetMetricStatistics
        .run(&series, &Value::Struct(Vec::new()), T0)
        .unwrap_err();
    assert_eq!(err.code, "MissingParameter");
    assert!(err.message.contains("Namespace"), "{}", err.message);
}

fn data_input(scan_by: Option<&str>, max: Option<i64>) -> Value {
    let query = Value::structure([
        ("Id", Some(Value::text("m1"))),
        (
            "MetricStat",
            Some(Value::structure([
                (
                    "Metric",
                    Some(Value::structure([
                        ("Namespace", Some(Value::text("AWS/ELB"))),
                        ("MetricName", Some(Value::text("RequestCount"))),
                    ])),
                ),
                ("Period", Some(Value::Int(60))),
                ("Stat", Some(Value::text("Sum"))),
            ])),
        ),
    ]);
    Value::structure([
        ("MetricDataQueries", Some(Value::List(vec![query]))),
        ("StartTime", Some(Value::Time(T0 as f64))),
        ("EndTime", Some(Value::Time((T0 + 3600) as f64))),
        ("ScanBy", scan_by.map(Value::text)),
        ("MaxDatapoints", max.map(Value::Int)),
    ])
}

/// The (Timestamps, Values, StatusCode) of the first result.
fn first_result(output: &Value) -> (Vec<Value>, Vec<Value>, Value) {
    let text = format!("{output:?}");
    let Value::Struct(members) = output else {
        panic!("{text}")
    };
    let Some((_, Value::List(results))) = members.first() else {
        panic!("{text}")
    };
    let Value::Struct(r) = &results[0] else {
        panic!("{text}")
    };
    let get = |name: &str| {
        r.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let (Value::List(t), Value::List(v)) = (get("Timestamps"), get("Values")) else {
        panic!("{text}")
    };
    (t, v, get("StatusCode"))
}

#[test]
fn get_metric_data_orders_and_bounds_its_datapoints() {
    let (_registry, series) = series();
    let run = |input: Value| Operation::GetMetricData.run(&series, &input, T0).unwrap();
    let (t, v, status) = first_result(&run(data_input(None, None)));
    assert_eq!(
        t,
        [Value::Time((T0 + 60) as f64), Value::Time(T0 as f64)],
        "newest first"
    );
    assert_eq!(v, [Value::Float(2.0), Value::Float(3.0)]);
    assert_eq!(status, Value::text("Complete"));
    let (t, _, _) = first_result(&run(data_input(Some("TimestampAscending"), None)));
    assert_eq!(t[0], Value::Time(T0 as f64));
    let (t, _, status) = first_result(&run(data_input(None, Some(1))));
    assert_eq!(t.len(), 1);
    assert_eq!(status, Value::text("PartialData"));
    let err = Operation::GetMetricData
        .run(&series, &data_input(Some("Sideways"), None), T0)
        .unwrap_err();
    assert_eq!(err.code, "ValidationError");
}

#[test]
fn list_metrics_pages_by_500() {
    let registry = Arc::new(Registry::default());
    let series = Series::in_memory_at(Arc::clone(&registry), T0).unwrap();
    for i in 0..600 {
        registry.lb(&format!("lb-{i:03}")).requests.inc();
    }
    let page = |token: Option<&str>| {
        let input = Value::structure([
            ("MetricName", Some(Value::text("RequestCount"))),
            ("NextToken", token.map(Value::text)),
        ]);
        let Value::Struct(out) = Operation::ListMetrics.run(&series, &input, T0).unwrap() else {
            panic!()
        };
        let Some((_, Value::List(metrics))) = out.iter().find(|(n, _)| n == "Metrics") else {
            panic!()
        };
        let next = out
            .iter()
            .find(|(n, _)| n == "NextToken")
            .map(|(_, v)| v.clone());
        (metrics.len(), next)
    };
    // 600 load balancers and the aggregate.
    let (n, next) = page(None);
    assert_eq!(n, 500);
    let Some(Value::Text(next)) = next else {
        panic!("{next:?}")
    };
    assert_eq!(page(Some(&next)), (101, None));
    let err = Operation::ListMetrics
        .run(
            &series,
            &Value::structure([("NextToken", Some(Value::text("garbage")))]),
            T0,
        )
        .unwrap_err();
    assert_eq!(err.code, "InvalidNextToken");
}
