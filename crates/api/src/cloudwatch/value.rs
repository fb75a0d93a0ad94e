//! A request or response of CloudWatch as a tree, whichever protocol carries it: rpc-v2-cbor
//! decodes into it directly, the Query protocol's flat parameters are read into it by the
//! operation's input [`Shape`], and answers are built as trees that each protocol writes out.
//! Operations read their input through [`Input`], which names the parameter at fault in
//! CloudWatch's words (`MetricDataQueries.member.1.MetricStat.Period`).

use crate::error::ApiError;
use crate::params::Params;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    /// A structure, members in order.
    Struct(Vec<(String, Value)>),
    /// A map shape (`ExtendedStatistics` of a datapoint): keys are data, not member names.
    Map(Vec<(String, Value)>),
    /// A timestamp, in seconds since the Unix epoch.
    Time(f64),
}

impl Value {
    /// A structure of the members given, leaving out those that are `None`.
    pub fn structure<const N: usize>(members: [(&str, Option<Value>); N]) -> Value {
        Value::Struct(
            members
                .into_iter()
                .filter_map(|(name, v)| Some((name.to_owned(), v?)))
                .collect(),
        )
    }

    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    fn member(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) | Value::Map(members) => members
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .filter(|v| **v != Value::Null),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Text(_) => "a string",
            Value::Bytes(_) => "a blob",
            Value::List(_) => "a list",
            Value::Struct(_) | Value::Map(_) => "a structure",
            Value::Time(_) => "a timestamp",
        }
    }
}

/// One structure of a request, and where it sits in it (for error messages).
pub(crate) struct Input<'a> {
    value: &'a Value,
    path: String,
}

impl<'a> Input<'a> {
    pub fn root(value: &'a Value) -> Input<'a> {
        Input {
            value,
            path: String::new(),
        }
    }

    /// The name of member `name` in CloudWatch's error messages.
    pub fn path(&self, name: &str) -> String {
        format!("{}{name}", self.path)
    }

    fn wrong_type(&self, name: &str, want: &str, got: &Value) -> ApiError {
        ApiError::new(
            "InvalidParameterValue",
            format!(
                "The parameter {} must be {want}, not {}.",
                self.path(name),
                got.kind()
            ),
        )
    }

    pub fn missing(&self, name: &str) -> ApiError {
        ApiError::new(
            "MissingParameter",
            format!("The parameter {} is required.", self.path(name)),
        )
    }

    pub fn string(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.value.member(name) {
            None => Ok(None),
            Some(Value::Text(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    pub fn required_string(&self, name: &str) -> Result<&'a str, ApiError> {
        self.string(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.value.member(name) {
            None => Ok(None),
            Some(Value::Int(n)) => Ok(Some(*n)),
            Some(Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(Some(*f as i64)),
            Some(other) => Err(self.wrong_type(name, "an integer", other)),
        }
    }

    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.value.member(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(name, "a boolean", other)),
        }
    }

    /// A timestamp, in seconds since the epoch (the JSON protocol sends a plain number).
    pub fn time(&self, name: &str) -> Result<Option<f64>, ApiError> {
        match self.value.member(name) {
            None => Ok(None),
            Some(Value::Time(t) | Value::Float(t)) if t.is_finite() => Ok(Some(*t)),
            Some(Value::Int(n)) => Ok(Some(*n as f64)),
            Some(other) => Err(self.wrong_type(name, "a timestamp", other)),
        }
    }

    pub fn required_time(&self, name: &str) -> Result<f64, ApiError> {
        self.time(name)?.ok_or_else(|| self.missing(name))
    }

    pub fn structure(&self, name: &str) -> Result<Option<Input<'a>>, ApiError> {
        match self.value.member(name) {
            None => Ok(None),
            Some(v @ (Value::Struct(_) | Value::Map(_))) => Ok(Some(Input {
                value: v,
                path: format!("{}{name}.", self.path),
            })),
            Some(other) => Err(self.wrong_type(name, "a structure", other)),
        }
    }

    /// The members of list `name` that are structures (none when it is absent).
    pub fn list(&self, name: &str) -> Result<Vec<Input<'a>>, ApiError> {
        let items = match self.value.member(name) {
            None => return Ok(Vec::new()),
            Some(Value::List(items)) => items,
            Some(other) => return Err(self.wrong_type(name, "a list", other)),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Struct(_) | Value::Map(_) => Ok(Input {
                    value: v,
                    path: format!("{}{name}.member.{}.", self.path, i + 1),
                }),
                other => {
                    Err(self.wrong_type(&format!("{name}.member.{}", i + 1), "a structure", other))
                }
            })
            .collect()
    }

    /// The members of list `name` that are strings (none when it is absent).
    pub fn strings(&self, name: &str) -> Result<Vec<&'a str>, ApiError> {
        let items = match self.value.member(name) {
            None => return Ok(Vec::new()),
            Some(Value::List(items)) => items,
            Some(other) => return Err(self.wrong_type(name, "a list", other)),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Text(s) => Ok(s.as_str()),
                other => {
                    Err(self.wrong_type(&format!("{name}.member.{}", i + 1), "a string", other))
                }
            })
            .collect()
    }
}

/// The type of a request member, as far as the Query protocol's strings must be read.
#[derive(Debug)]
pub(crate) enum Shape {
    Str,
    Int,
    Bool,
    Time,
    List(&'static Shape),
    Struct(&'static [(&'static str, Shape)]),
}

/// Reads Query parameters (`Dimensions.member.1.Name=...`) into a tree of the structure
/// `fields`. Members the shape does not name are ignored, as CloudWatch does.
pub(crate) fn from_params(params: &Params, fields: &[(&str, Shape)]) -> Result<Value, ApiError> {
    structure(params, fields, "")
}

fn structure(params: &Params, fields: &[(&str, Shape)], prefix: &str) -> Result<Value, ApiError> {
    let mut members = Vec::new();
    for (name, shape) in fields {
        let key = format!("{prefix}{name}");
        if let Some(v) = member(params, shape, &key)? {
            members.push(((*name).to_owned(), v));
        }
    }
    Ok(Value::Struct(members))
}

fn member(params: &Params, shape: &Shape, key: &str) -> Result<Option<Value>, ApiError> {
    let scalar = |parse: fn(&str) -> Option<Value>| -> Result<Option<Value>, ApiError> {
        params
            .get(key)
            .map(|s| {
                parse(s).ok_or_else(|| {
                    ApiError::new(
                        "InvalidParameterValue",
                        format!("The value {s} for parameter {key} is invalid."),
                    )
                })
            })
            .transpose()
    };
    match shape {
        Shape::Str => Ok(params.get(key).map(Value::text)),
        Shape::Int => scalar(|s| s.parse().ok().map(Value::Int)),
        Shape::Bool => scalar(|s| match s {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        }),
        Shape::Time => scalar(|s| parse_time(s).map(Value::Time)),
        Shape::Struct(fields) => {
            let v = structure(params, fields, &format!("{key}."))?;
            Ok(matches!(&v, Value::Struct(m) if !m.is_empty()).then_some(v))
        }
        Shape::List(inner) => {
            let members = params.members(key)?;
            if members.is_empty() {
                return Ok(None);
            }
            let items = members
                .iter()
                .map(|m| match inner {
                    Shape::Struct(fields) => structure(m, fields, ""),
                    scalar => Ok(member(m, scalar, "")?.unwrap_or(Value::Null)),
                })
                .collect::<Result<_, _>>()?;
            Ok(Some(Value::List(items)))
        }
    }
}

/// An ISO 8601 timestamp as the SDKs send it (`2026-12-01T10:00:00Z`, with or without
/// fractional seconds or an offset), or seconds since the epoch.
fn parse_time(s: &str) -> Option<f64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos() as f64 / 1e9);
    }
    s.parse::<f64>().ok().filter(|t| t.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    static DIMENSION: Shape = Shape::Struct(&[("Name", Shape::Str), ("Value", Shape::Str)]);
    static INPUT: &[(&str, Shape)] = &[
        ("Namespace", Shape::Str),
        ("Period", Shape::Int),
        ("StartTime", Shape::Time),
        ("Statistics", Shape::List(&Shape::Str)),
        ("Dimensions", Shape::List(&DIMENSION)),
        ("Metric", Shape::Struct(&[("MetricName", Shape::Str)])),
    ];

    #[test]
    fn query_parameters_become_a_tree() {
        let params = Params::parse(
            b"Action=GetMetricStatistics&Namespace=AWS%2FELB&Period=60\
              &StartTime=2026-12-01T10%3A00%3A00Z&Statistics.member.2=Sum&Statistics.member.1=Average\
              &Dimensions.member.1.Name=LoadBalancerName&Dimensions.member.1.Value=web\
              &Metric.MetricName=Latency",
        )
        .unwrap();
        let tree = from_params(&params, INPUT).unwrap();
        let input = Input::root(&tree);
        assert_eq!(input.string("Namespace").unwrap(), Some("AWS/ELB"));
        assert_eq!(input.integer("Period").unwrap(), Some(60));
        assert_eq!(input.time("StartTime").unwrap(), Some(1_796_119_200.0));
        assert_eq!(input.strings("Statistics").unwrap(), ["Average", "Sum"]);
        let dims = input.list("Dimensions").unwrap();
        assert_eq!(dims[0].string("Value").unwrap(), Some("web"));
        assert_eq!(dims[0].path("Value"), "Dimensions.member.1.Value");
        let metric = input.structure("Metric").unwrap().unwrap();
        assert_eq!(metric.string("MetricName").unwrap(), Some("Latency"));
        assert!(input.structure("Missing").unwrap().is_none());
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let params = Params::parse(b"Period=sixty&StartTime=yesterday").unwrap();
        let err = from_params(&params, INPUT).unwrap_err();
        assert_eq!(err.code, "InvalidParameterValue");
        assert!(err.message.contains("Period"), "{}", err.message);
        let tree = Value::structure([("Period", Some(Value::text("60")))]);
        let err = Input::root(&tree).integer("Period").unwrap_err();
        assert!(
            err.message.contains("must be an integer"),
            "{}",
            err.message
        );
        let err = Input::root(&tree).required_string("Namespace").unwrap_err();
        assert_eq!(err.code, "MissingParameter");
    }
}
