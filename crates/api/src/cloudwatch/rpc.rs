//! CloudWatch in Smithy's rpc-v2-cbor protocol, as the aws CLI and boto3 send it:
//! `POST /service/GraniteServiceVersion20100801/operation/<Op>` with `smithy-protocol:
//! rpc-v2-cbor` and a CBOR body; answers in CBOR with the same header. CloudWatch is
//! `awsQueryCompatible`: an error carries its Query-protocol code in `x-amzn-query-error`
//! (`InvalidParameterValue;Sender`), which the SDKs report rather than the shape name.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

use super::value::Value;
use super::{cbor, error_shape, Operation, SERVICE};
use crate::error::ApiError;
use crate::{access, with_request_id, Api};

/// The path of every operation: the service's Smithy name, then the operation's.
const PATH_PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";
/// The namespace of CloudWatch's shapes, in an error's `__type`.
const SHAPE_NAMESPACE: &str = "com.amazonaws.cloudwatch";

/// Whether a request is a CloudWatch rpc-v2-cbor call (by its path, the protocol's one
/// distinguishing mark besides its header).
pub(crate) fn is_rpc(parts: &http::request::Parts) -> bool {
    parts.uri.path().starts_with(PATH_PREFIX)
}

/// Answers one rpc-v2-cbor call. Blocks (the series reads SQLite).
pub(crate) fn rpc(
    api: &Api,
    parts: &http::request::Parts,
    body: &[u8],
    request_id: &str,
) -> Response<Full<Bytes>> {
    let _running = api.pause.calls.read().unwrap_or_else(|e| e.into_inner());
    let result = (|| {
        let op_name = &parts.uri.path()[PATH_PREFIX.len()..];
        if parts.method != Method::POST {
            return Err(ApiError::new(
                "InvalidAction",
                "rpc-v2-cbor operations are called with POST",
            ));
        }
        let protocol = parts.headers.get("smithy-protocol");
        if protocol.is_some_and(|p| p != "rpc-v2-cbor") {
            return Err(ApiError::new(
                "InvalidAction",
                "this path answers the smithy-protocol rpc-v2-cbor only",
            ));
        }
        let (_, scope) = api.admit(parts, body, &[SERVICE])?;
        access::authorize(scope, &api.account, SERVICE, op_name)?;
        let op = Operation::named(op_name)?;
        let input = cbor::decode(body)?;
        op.run(&api.series, &input, fulcrum_telemetry::series::now())
    })();
    match result {
        Ok(output) => answer(StatusCode::OK, &output, request_id),
        Err(err) => {
            tracing::info!(code = err.code, message = %err.message, "API call refused");
            error(&err, request_id)
        }
    }
}

/// An error as rpc-v2-cbor carries it: `__type` (the shape, or the code for errors outside
/// CloudWatch's model such as a bad signature), `message`, and the Query code in a header.
pub(crate) fn error(err: &ApiError, request_id: &str) -> Response<Full<Bytes>> {
    let shape = error_shape(err.code).map_or_else(
        || err.code.to_owned(),
        |shape| format!("{SHAPE_NAMESPACE}#{shape}"),
    );
    let body = Value::structure([
        ("__type", Some(Value::Text(shape))),
        ("message", Some(Value::text(err.message.clone()))),
    ]);
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = answer(status, &body, request_id);
    let fault = if err.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    if let Ok(v) = HeaderValue::try_from(format!("{};{fault}", err.code)) {
        resp.headers_mut().insert("x-amzn-query-error", v);
    }
    resp
}

fn answer(status: StatusCode, body: &Value, request_id: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(cbor::encode(body))));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/cbor"),
    );
    with_request_id(resp, request_id)
}
