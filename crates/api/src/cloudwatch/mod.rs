//! CloudWatch's API for the `AWS/ELB` namespace: GetMetricStatistics, GetMetricData and
//! ListMetrics over the node's one-minute series (`fulcrum_telemetry::series`), signed for
//! the service `monitoring` like every other call.
//!
//! Today's SDKs speak CloudWatch in an RPC protocol (`rpc.rs`): awsJson1_0 (the aws CLI and
//! boto3: JSON with `X-Amz-Target`) or Smithy's rpc-v2-cbor (CBOR on
//! `/service/GraniteServiceVersion20100801/operation/<Op>`); older ones in the Query protocol
//! (`Action=GetMetricStatistics` on `/`, XML; `query.rs`). Both read their input into one tree (`value.rs`) that the operations read, and
//! write the tree the operations build. Other namespaces have no metrics: empty answers, not
//! errors, as CloudWatch answers for a metric nobody published.

mod cbor;
mod json;
mod list;
mod query;
mod rpc;
mod statistics;
mod value;

use fulcrum_telemetry::series::{Series, SeriesError};

use crate::error::ApiError;
use value::{Input, Shape, Value};

pub(crate) use query::dispatch;
pub(crate) use rpc::{rpc, Protocol};

/// The service name in the SigV4 credential scope.
pub(crate) const SERVICE: &str = "monitoring";
/// The Query protocol's XML namespace.
pub(crate) const NAMESPACE: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";
/// The one metric namespace fulcrum publishes.
pub(crate) const NAMESPACE_ELB: &str = "AWS/ELB";

/// The operations fulcrum answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    GetMetricStatistics,
    GetMetricData,
    ListMetrics,
}

impl Operation {
    fn named(name: &str) -> Result<Operation, ApiError> {
        Ok(match name {
            "GetMetricStatistics" => Operation::GetMetricStatistics,
            "GetMetricData" => Operation::GetMetricData,
            "ListMetrics" => Operation::ListMetrics,
            other => {
                return Err(ApiError::new(
                    "InvalidAction",
                    format!(
                        "fulcrum answers GetMetricStatistics, GetMetricData and ListMetrics of \
                         CloudWatch, not {other}"
                    ),
                ))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Operation::GetMetricStatistics => "GetMetricStatistics",
            Operation::GetMetricData => "GetMetricData",
            Operation::ListMetrics => "ListMetrics",
        }
    }

    /// The input's members, for reading the Query protocol's parameters.
    fn input_shape(self) -> &'static [(&'static str, Shape)] {
        match self {
            Operation::GetMetricStatistics => statistics::GET_METRIC_STATISTICS,
            Operation::GetMetricData => statistics::GET_METRIC_DATA,
            Operation::ListMetrics => list::LIST_METRICS,
        }
    }

    /// Runs the operation on `input`; `now` in seconds since the epoch.
    fn run(self, series: &Series, input: &Value, now: i64) -> Result<Value, ApiError> {
        let input = Input::root(input);
        match self {
            Operation::GetMetricStatistics => statistics::get_metric_statistics(series, &input),
            Operation::GetMetricData => statistics::get_metric_data(series, &input),
            Operation::ListMetrics => list::list_metrics(series, &input, now),
        }
    }
}

/// A failure of the series' storage, as CloudWatch's InternalServiceError (500); the detail
/// goes to the log, not to the caller.
fn internal(e: SeriesError) -> ApiError {
    tracing::error!(error = %e, "metrics: a query failed");
    ApiError {
        code: "InternalServiceError",
        status: 500,
        message: "the metrics could not be read".into(),
    }
}

/// The error shapes of CloudWatch's model, by code (rpc-v2-cbor names an error by its shape).
fn error_shape(code: &str) -> Option<&'static str> {
    Some(match code {
        "InvalidParameterValue" => "InvalidParameterValueException",
        "InvalidParameterCombination" => "InvalidParameterCombinationException",
        "MissingParameter" => "MissingRequiredParameterException",
        "InvalidNextToken" => "InvalidNextToken",
        "InternalServiceError" => "InternalServiceFault",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
