//! CloudWatch in the AWS Query protocol (`Action=GetMetricStatistics&Version=2010-08-01` on
//! `/`), which SDKs older than rpc-v2-cbor send: parameters read by the operation's input
//! shape, answers written as XML in the `monitoring` namespace.

use super::value::{from_params, Value};
use super::{Operation, NAMESPACE};
use crate::error::ApiError;
use crate::time::iso8601;
use crate::xml::{done, Xml};
use crate::Call;

/// Runs one Query call whose SigV4 scope named `monitoring`; returns its XML.
pub(crate) fn dispatch(call: &Call<'_>, action: &str) -> Result<String, ApiError> {
    let op = Operation::named(action)?;
    let input = from_params(call.params, op.input_shape())?;
    let now = i64::try_from(call.now).unwrap_or(i64::MAX);
    let output = op.run(&call.ctl.series, &input, now)?;
    Ok(xml(op.name(), &output, call.request_id))
}

fn xml(action: &str, output: &Value, request_id: &str) -> String {
    let mut x = Xml::result(action, NAMESPACE);
    if let Value::Struct(members) = output {
        for (name, v) in members {
            element(&mut x, name, v);
        }
    }
    done(x, action).finish(action, request_id)
}

/// One member: structures as child elements, lists as `<member>`s, maps as
/// `<entry><key/><value/></entry>`, timestamps in ISO 8601.
fn element(x: &mut Xml, tag: &str, v: &Value) {
    match v {
        Value::Null | Value::Bytes(_) => {}
        Value::Bool(b) => {
            x.text(tag, b);
        }
        Value::Int(n) => {
            x.text(tag, n);
        }
        Value::Float(f) => {
            x.text(tag, f);
        }
        Value::Text(s) => {
            x.text(tag, s);
        }
        Value::Time(t) => {
            x.text(tag, iso8601(t.max(0.0) as u64));
        }
        Value::List(items) => {
            x.open(tag);
            for item in items {
                element(x, "member", item);
            }
            x.close(tag);
        }
        Value::Struct(members) => {
            x.open(tag);
            for (name, v) in members {
                element(x, name, v);
            }
            x.close(tag);
        }
        Value::Map(entries) => {
            x.open(tag);
            for (key, v) in entries {
                x.open("entry");
                x.text("key", key);
                element(x, "value", v);
                x.close("entry");
            }
            x.close(tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_of_a_datapoint() {
        let output = Value::structure([
            ("Label", Some(Value::text("Latency"))),
            (
                "Datapoints",
                Some(Value::List(vec![Value::structure([
                    ("Timestamp", Some(Value::Time(1_796_083_200.0))),
                    ("Maximum", Some(Value::Float(0.25))),
                    (
                        "ExtendedStatistics",
                        Some(Value::Map(vec![("p99".into(), Value::Float(0.5))])),
                    ),
                ])])),
            ),
        ]);
        let text = xml("GetMetricStatistics", &output, "rid");
        assert!(text.contains(
            r#"<GetMetricStatisticsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><GetMetricStatisticsResult><Label>Latency</Label><Datapoints><member><Timestamp>2026-12-01T00:00:00.000Z</Timestamp><Maximum>0.25</Maximum><ExtendedStatistics><entry><key>p99</key><value>0.5</value></entry></ExtendedStatistics></member></Datapoints></GetMetricStatisticsResult>"#
        ), "{text}");
        assert!(text.ends_with(
            "<RequestId>rid</RequestId></ResponseMetadata></GetMetricStatisticsResponse>"
        ));
    }
}
