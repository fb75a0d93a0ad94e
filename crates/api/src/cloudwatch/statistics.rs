//! GetMetricStatistics and GetMetricData: a metric's statistics per period, from the node's
//! one-minute series. Both name a metric the same way, check periods and times alike, and
//! answer nothing (not an error) for a metric fulcrum does not have, as CloudWatch does.

use fulcrum_telemetry::series::{Metric, Query, Series, Stats};

use super::value::{Input, Shape, Value};
use super::{internal, NAMESPACE_ELB};
use crate::error::ApiError;

pub(super) static DIMENSION: Shape = Shape::Struct(&[("Name", Shape::Str), ("Value", Shape::Str)]);
static METRIC_DATA_QUERY: Shape = Shape::Struct(&[
    ("Id", Shape::Str),
    (
        "MetricStat",
        Shape::Struct(&[
            (
                "Metric",
                Shape::Struct(&[
                    ("Namespace", Shape::Str),
                    ("MetricName", Shape::Str),
                    ("Dimensions", Shape::List(&DIMENSION)),
                ]),
            ),
            ("Period", Shape::Int),
            ("Stat", Shape::Str),
            ("Unit", Shape::Str),
        ]),
    ),
    ("Expression", Shape::Str),
    ("Label", Shape::Str),
    ("ReturnData", Shape::Bool),
    ("Period", Shape::Int),
    ("AccountId", Shape::Str),
]);

pub(super) static GET_METRIC_STATISTICS: &[(&str, Shape)] = &[
    ("Namespace", Shape::Str),
    ("MetricName", Shape::Str),
    ("Dimensions", Shape::List(&DIMENSION)),
    ("StartTime", Shape::Time),
    ("EndTime", Shape::Time),
    ("Period", Shape::Int),
    ("Statistics", Shape::List(&Shape::Str)),
    ("ExtendedStatistics", Shape::List(&Shape::Str)),
    ("Unit", Shape::Str),
];

pub(super) static GET_METRIC_DATA: &[(&str, Shape)] = &[
    ("MetricDataQueries", Shape::List(&METRIC_DATA_QUERY)),
    ("StartTime", Shape::Time),
    ("EndTime", Shape::Time),
    ("NextToken", Shape::Str),
    ("ScanBy", Shape::Str),
    ("MaxDatapoints", Shape::Int),
    ("LabelOptions", Shape::Struct(&[("Timezone", Shape::Str)])),
];

/// GetMetricStatistics answers at most this many datapoints.
const MAX_DATAPOINTS: i64 = 1440;
/// GetMetricData's default (and largest) MaxDatapoints.
const MAX_DATA_DATAPOINTS: i64 = 100_800;
const MAX_QUERIES: usize = 500;

/// CloudWatch's StandardUnit values: any other is refused, and one that is not the metric's
/// matches no data.
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The statistics of a datapoint, in the order CloudWatch writes them.
const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// One statistic a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stat {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
    /// `p99`, `p99.9`: the percentile, 0 to 100.
    Percentile(f64),
}

impl Stat {
    fn plain(name: &str) -> Option<Stat> {
        Some(match name {
            "SampleCount" => Stat::SampleCount,
            "Average" => Stat::Average,
            "Sum" => Stat::Sum,
            "Minimum" => Stat::Minimum,
            "Maximum" => Stat::Maximum,
            _ => return None,
        })
    }

    fn percentile(name: &str) -> Option<Stat> {
        let digits = name.strip_prefix('p')?;
        let valid = !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.split('.').count() <= 2
            && !digits.starts_with('.')
            && !digits.ends_with('.');
        let p: f64 = digits.parse().ok().filter(|_| valid)?;
        (0.0..=100.0).contains(&p).then_some(Stat::Percentile(p))
    }

    fn of(self, s: &Stats) -> Option<f64> {
        Some(match self {
            Stat::SampleCount => s.samples,
            Stat::Average => s.average(),
            Stat::Sum => s.sum,
            Stat::Minimum => s.min,
            Stat::Maximum => s.max,
            Stat::Percentile(p) => return s.percentile(p),
        })
    }
}

/// What a request asks the series for, once checked.
struct Ask<'a> {
    /// `None`: a metric fulcrum does not publish (another namespace or name, other
    /// dimensions, another unit): no datapoints.
    target: Option<(Metric, Option<&'a str>)>,
    start: i64,
    end: i64,
    period: i64,
}

impl Ask<'_> {
    fn periods(&self, series: &Series) -> Result<Vec<(i64, Stats)>, ApiError> {
        let Some((metric, load_balancer)) = self.target else {
            return Ok(Vec::new());
        };
        series
            .statistics(&Query {
                metric,
                load_balancer,
                start: self.start,
                end: self.end,
                period: self.period,
            })
            .map_err(internal)
    }

    /// How many periods the time range holds.
    fn datapoints(&self) -> i64 {
        let start = i128::from(self.start.div_euclid(60) * 60);
        let (end, period) = (i128::from(self.end), i128::from(self.period));
        i64::try_from((end - start + period - 1) / period).unwrap_or(i64::MAX)
    }
}

/// The metric that (namespace, name, dimensions) name, if fulcrum publishes it: `AWS/ELB`,
/// with `LoadBalancerName` or no dimension at all (every load balancer added up).
fn target<'a>(
    input: &Input<'a>,
    namespace: &str,
    name: &str,
    unit: Option<&str>,
) -> Result<Option<(Metric, Option<&'a str>)>, ApiError> {
    let mut dimensions = Vec::new();
    for d in input.list("Dimensions")? {
        dimensions.push((d.required_string("Name")?, d.required_string("Value")?));
    }
    let Some(metric) = Metric::from_name(name).filter(|_| namespace == NAMESPACE_ELB) else {
        return Ok(None);
    };
    if unit.is_some_and(|u| u != metric.unit().as_str()) {
        return Ok(None);
    }
    Ok(match dimensions.as_slice() {
        [] => Some((metric, None)),
        [("LoadBalancerName", lb)] => Some((metric, Some(*lb))),
        _ => None,
    })
}

fn check_unit(input: &Input<'_>, unit: Option<&str>, code: &'static str) -> Result<(), ApiError> {
    match unit {
        Some(u) if !UNITS.contains(&u) => Err(ApiError::new(
            code,
            format!(
                "The parameter {} must be a value in the set [ {} ].",
                input.path("Unit"),
                UNITS.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

fn check_period(
    input: &Input<'_>,
    name: &str,
    period: i64,
    code: &'static str,
) -> Result<(), ApiError> {
    let why = if period < 1 {
        "must be greater than 0"
    } else if period % 60 != 0 {
        // High-resolution periods (1, 5, 10, 30) are for custom metrics stored per second;
        // ELB's metrics are one-minute data.
        "must be a multiple of 60"
    } else {
        return Ok(());
    };
    Err(ApiError::new(
        code,
        format!("The parameter {} {why}.", input.path(name)),
    ))
}

/// Timestamps are taken between the epoch and the end of year 9999, as CloudWatch's are: no
/// arithmetic on them can overflow.
const LAST_SECOND: f64 = 253_402_300_799.0;

/// StartTime and EndTime, as whole seconds: the start rounded down, the end up.
fn times(input: &Input<'_>, code: &'static str) -> Result<(i64, i64), ApiError> {
    let start = input.required_time("StartTime")?.clamp(0.0, LAST_SECOND);
    let end = input.required_time("EndTime")?.clamp(0.0, LAST_SECOND);
    if start >= end {
        return Err(ApiError::new(
            code,
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    Ok((start.floor() as i64, end.ceil() as i64))
}

pub(super) fn get_metric_statistics(series: &Series, input: &Input<'_>) -> Result<Value, ApiError> {
    const CODE: &str = "InvalidParameterValue";
    let namespace = input.required_string("Namespace")?;
    let name = input.required_string("MetricName")?;
    let (start, end) = times(input, CODE)?;
    let period = input
        .integer("Period")?
        .ok_or_else(|| input.missing("Period"))?;
    check_period(input, "Period", period, CODE)?;
    let unit = input.string("Unit")?;
    check_unit(input, unit, CODE)?;

    let plain = input.strings("Statistics")?;
    let extended = input.strings("ExtendedStatistics")?;
    if plain.is_empty() && extended.is_empty() {
        return Err(ApiError::new(
            "MissingParameter",
            "Must specify either Statistics or ExtendedStatistics.",
        ));
    }
    if !plain.is_empty() && !extended.is_empty() {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            "The parameters Statistics and ExtendedStatistics are mutually exclusive.",
        ));
    }
    if plain.len() > 5 || extended.len() > 10 {
        return Err(ApiError::new(
            CODE,
            "At most 5 Statistics or 10 ExtendedStatistics may be asked for.",
        ));
    }
    let mut wanted = Vec::new();
    for (i, s) in plain.iter().enumerate() {
        let stat = Stat::plain(s).ok_or_else(|| {
            ApiError::new(
                CODE,
                format!(
                    "The parameter Statistics.member.{} must be a value in the set [ {} ].",
                    i + 1,
                    STATISTICS.join(", ")
                ),
            )
        })?;
        wanted.push(stat);
    }
    let mut percentiles = Vec::new();
    for (i, s) in extended.iter().enumerate() {
        let stat = Stat::percentile(s).ok_or_else(|| {
            ApiError::new(
                CODE,
                format!(
                    "The value {s} for parameter ExtendedStatistics.member.{} is invalid: \
                     percentiles are p0.0 to p100.",
                    i + 1
                ),
            )
        })?;
        percentiles.push((*s, stat));
    }

    let ask = Ask {
        target: target(input, namespace, name, unit)?,
        start,
        end,
        period,
    };
    let n = ask.datapoints();
    if n > MAX_DATAPOINTS {
        return Err(ApiError::new(
            "InvalidParameterCombination",
            format!(
                "You have requested up to {n} datapoints, which exceeds the limit of \
                 {MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing \
                 Period, or decreasing the time range."
            ),
        ));
    }
    let unit = ask.target.map(|(m, _)| m.unit().as_str()).unwrap_or("None");
    let datapoints = ask
        .periods(series)?
        .into_iter()
        .map(|(t, stats)| {
            let mut members = vec![("Timestamp".to_owned(), Value::Time(t as f64))];
            for (name, stat) in STATISTICS.iter().zip([
                Stat::SampleCount,
                Stat::Average,
                Stat::Sum,
                Stat::Minimum,
                Stat::Maximum,
            ]) {
                if wanted.contains(&stat) {
                    if let Some(v) = stat.of(&stats) {
                        members.push(((*name).to_owned(), Value::Float(v)));
                    }
                }
            }
            members.push(("Unit".to_owned(), Value::text(unit)));
            if !percentiles.is_empty() {
                let values = percentiles
                    .iter()
                    .filter_map(|(name, stat)| {
                        Some(((*name).to_owned(), Value::Float(stat.of(&stats)?)))
                    })
                    .collect();
                members.push(("ExtendedStatistics".to_owned(), Value::Map(values)));
            }
            Value::Struct(members)
        })
        .collect();
    Ok(Value::structure([
        ("Label", Some(Value::text(name))),
        ("Datapoints", Some(Value::List(datapoints))),
    ]))
}

/// A query's `Id`: a lower-case letter, then letters, digits and underscores.
fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn get_metric_data(series: &Series, input: &Input<'_>) -> Result<Value, ApiError> {
    const CODE: &str = "ValidationError";
    let (start, end) = times(input, CODE)?;
    if input.string("NextToken")?.is_some() {
        // Every answer is whole: no token was ever handed out.
        return Err(ApiError::new(
            "InvalidNextToken",
            "The NextToken is not one this service handed out.",
        ));
    }
    let descending = match input.string("ScanBy")? {
        None | Some("TimestampDescending") => true,
        Some("TimestampAscending") => false,
        Some(other) => {
            return Err(ApiError::new(
                CODE,
                format!(
                    "The value {other} for parameter ScanBy is invalid: it must be \
                     TimestampDescending or TimestampAscending."
                ),
            ))
        }
    };
    let mut budget = input
        .integer("MaxDatapoints")?
        .unwrap_or(MAX_DATA_DATAPOINTS)
        .clamp(1, MAX_DATA_DATAPOINTS);
    let queries = input.list("MetricDataQueries")?;
    if queries.is_empty() {
        return Err(input.missing("MetricDataQueries"));
    }
    if queries.len() > MAX_QUERIES {
        return Err(ApiError::new(
            CODE,
            format!("At most {MAX_QUERIES} MetricDataQueries may be given."),
        ));
    }

    // Every query is checked before any is run: one bad query fails the call.
    let mut asks = Vec::with_capacity(queries.len());
    for q in &queries {
        let id = q.required_string("Id")?;
        if !valid_id(id) {
            return Err(ApiError::new(
                CODE,
                format!(
                    "The value {id} for parameter {} is invalid: it must start with a \
                     lower-case letter and hold only letters, digits and underscores.",
                    q.path("Id")
                ),
            ));
        }
        if q.string("Expression")?.is_some() {
            return Err(ApiError::new(
                CODE,
                format!(
                    "{}: fulcrum does not evaluate metric math or Metrics Insights \
                     expressions; ask for each metric with a MetricStat.",
                    q.path("Expression")
                ),
            ));
        }
        let stat_input = q
            .structure("MetricStat")?
            .ok_or_else(|| q.missing("MetricStat"))?;
        let metric = stat_input
            .structure("Metric")?
            .ok_or_else(|| stat_input.missing("Metric"))?;
        let namespace = metric.required_string("Namespace")?;
        let name = metric.required_string("MetricName")?;
        let period = stat_input
            .integer("Period")?
            .ok_or_else(|| stat_input.missing("Period"))?;
        check_period(&stat_input, "Period", period, CODE)?;
        let stat_name = stat_input.required_string("Stat")?;
        let stat = Stat::plain(stat_name)
            .or_else(|| Stat::percentile(stat_name))
            .ok_or_else(|| {
                ApiError::new(
                    CODE,
                    format!(
                        "The value {stat_name} for parameter {} is invalid.",
                        stat_input.path("Stat")
                    ),
                )
            })?;
        let unit = stat_input.string("Unit")?;
        check_unit(&stat_input, unit, CODE)?;
        let ask = Ask {
            target: target(&metric, namespace, name, unit)?,
            start,
            end,
            period,
        };
        if ask.datapoints() > MAX_DATA_DATAPOINTS {
            return Err(ApiError::new(
                CODE,
                format!(
                    "{} asks for more than {MAX_DATA_DATAPOINTS} datapoints: increase \
                     Period or shorten the time range.",
                    q.path("MetricStat")
                ),
            ));
        }
        let label = q.string("Label")?.unwrap_or(name);
        let returned = q.boolean("ReturnData")?.unwrap_or(true);
        asks.push((id, label, stat, ask, returned));
    }

    let mut results = Vec::new();
    for (id, label, stat, ask, returned) in asks {
        if !returned {
            continue;
        }
        let mut points: Vec<(i64, f64)> = ask
            .periods(series)?
            .iter()
            .filter_map(|(t, s)| Some((*t, stat.of(s)?)))
            .collect();
        if descending {
            points.reverse();
        }
        let complete = points.len() as i64 <= budget;
        points.truncate(usize::try_from(budget).unwrap_or(usize::MAX));
        budget -= points.len() as i64;
        results.push(Value::structure([
            ("Id", Some(Value::text(id))),
            ("Label", Some(Value::text(label))),
            (
                "Timestamps",
                Some(Value::List(
                    points.iter().map(|(t, _)| Value::Time(*t as f64)).collect(),
                )),
            ),
            (
                "Values",
                Some(Value::List(
                    points.iter().map(|(_, v)| Value::Float(*v)).collect(),
                )),
            ),
            (
                "StatusCode",
                Some(Value::text(if complete {
                    "Complete"
                } else {
                    "PartialData"
                })),
            ),
        ]));
    }
    Ok(Value::structure([
        ("MetricDataResults", Some(Value::List(results))),
        ("Messages", Some(Value::List(Vec::new()))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_names() {
        assert_eq!(Stat::percentile("p99"), Some(Stat::Percentile(99.0)));
        assert_eq!(Stat::percentile("p99.9"), Some(Stat::Percentile(99.9)));
        assert_eq!(Stat::percentile("p0.0"), Some(Stat::Percentile(0.0)));
        assert_eq!(Stat::percentile("p100"), Some(Stat::Percentile(100.0)));
        for bad in [
            "p", "p101", "99", "p-1", "p9.", "p.9", "p1.2.3", "pNaN", "tm99",
        ] {
            assert_eq!(Stat::percentile(bad), None, "{bad}");
        }
    }

    #[test]
    fn query_ids() {
        assert!(valid_id("m1"));
        assert!(valid_id("requests_by_lb"));
        for bad in ["", "1m", "M1", "m-1", "m 1"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
