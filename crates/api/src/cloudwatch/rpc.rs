//! CloudWatch in the two RPC protocols its model lists before Query, which today's SDKs send:
//!
//! - awsJson1_0 (the aws CLI and boto3, whose botocore prefers it): `POST /` with
//!   `X-Amz-Target: GraniteServiceVersion20100801.<Op>` and a JSON body;
//! - Smithy's rpc-v2-cbor (SDKs generated from Smithy, which take the model's first protocol):
//!   `POST /service/GraniteServiceVersion20100801/operation/<Op>` with `smithy-protocol:
//!   rpc-v2-cbor` and a CBOR body.
//!
//! Both answer in their own encoding. CloudWatch is `awsQueryCompatible`: an error carries
//! its Query-protocol code in `x-amzn-query-error` (`InvalidParameterValue;Sender`), which
//! the SDKs report rather than the shape's name.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::value::Value;
use super::{cbor, error_shape, json, Operation, SERVICE};
use crate::error::ApiError;
use crate::{access, with_request_id, Api, ApiBody};

/// The Smithy name of the service, which both protocols put before the operation's.
const TARGET_PREFIX: &str = "GraniteServiceVersion20100801.";
const CBOR_PATH_PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";
/// The namespace of CloudWatch's shapes, in an error's `__type`.
const SHAPE_NAMESPACE: &str = "com.amazonaws.cloudwatch";

/// An RPC protocol CloudWatch is spoken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Json,
    Cbor,
}

impl Protocol {
    /// The protocol of a CloudWatch RPC call, if the request is one: by its path
    /// (rpc-v2-cbor) or its `X-Amz-Target` (awsJson1_0).
    pub(crate) fn of(parts: &http::request::Parts) -> Option<Protocol> {
        if parts.uri.path().starts_with(CBOR_PATH_PREFIX) {
            return Some(Protocol::Cbor);
        }
        let target = parts.headers.get("x-amz-target")?.to_str().ok()?;
        target.starts_with(TARGET_PREFIX).then_some(Protocol::Json)
    }

    /// The operation the request names.
    fn operation(self, parts: &http::request::Parts) -> &str {
        match self {
            Protocol::Cbor => &parts.uri.path()[CBOR_PATH_PREFIX.len()..],
            Protocol::Json => parts
                .headers
                .get("x-amz-target")
                .and_then(|t| t.to_str().ok())
                .map_or("", |t| &t[TARGET_PREFIX.len()..]),
        }
    }

    fn decode(self, body: &[u8]) -> Result<Value, ApiError> {
        match self {
            Protocol::Cbor => cbor::decode(body),
            Protocol::Json => json::decode(body),
        }
    }

    fn answer(self, status: StatusCode, body: &Value, request_id: &str) -> Response<ApiBody> {
        let (bytes, content_type) = match self {
            Protocol::Cbor => (cbor::encode(body), "application/cbor"),
            Protocol::Json => (json::encode(body), "application/x-amz-json-1.0"),
        };
        let mut resp = Response::new(Full::new(Bytes::from(bytes)).boxed());
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        if self == Protocol::Cbor {
            headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
        }
        with_request_id(resp, request_id)
    }

    /// An error: `__type` (the shape, or the code for errors outside CloudWatch's model such
    /// as a bad signature), `message`, and the Query code in a header.
    pub(crate) fn error(self, err: &ApiError, request_id: &str) -> Response<ApiBody> {
        let shape = error_shape(err.code).map_or_else(
            || err.code.to_owned(),
            |shape| format!("{SHAPE_NAMESPACE}#{shape}"),
        );
        let body = Value::structure([
            ("__type", Some(Value::Text(shape))),
            ("message", Some(Value::text(err.message.clone()))),
        ]);
        let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = self.answer(status, &body, request_id);
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
}

/// Answers one RPC call. Blocks (the series reads SQLite).
pub(crate) fn rpc(
    api: &Api,
    protocol: Protocol,
    parts: &http::request::Parts,
    body: &[u8],
    request_id: &str,
) -> Response<ApiBody> {
    let _running = api.control.pause.enter();
    let result = (|| {
        if parts.method != Method::POST {
            return Err(ApiError::new(
                "InvalidAction",
                "CloudWatch operations are called with POST",
            ));
        }
        if protocol == Protocol::Json && parts.uri.path() != "/" {
            return Err(ApiError::new(
                "InvalidAction",
                format!("no API at {}", parts.uri.path()),
            ));
        }
        let smithy = parts.headers.get("smithy-protocol");
        if protocol == Protocol::Cbor && smithy.is_some_and(|p| p != "rpc-v2-cbor") {
            return Err(ApiError::new(
                "InvalidAction",
                "this path answers the smithy-protocol rpc-v2-cbor only",
            ));
        }
        let op_name = protocol.operation(parts);
        let (_, scope) = api.admit(parts, body, &[SERVICE])?;
        access::authorize(scope, &api.control.account, SERVICE, op_name)?;
        let op = Operation::named(op_name)?;
        let input = protocol.decode(body)?;
        op.run(
            &api.control.series,
            &input,
            fulcrum_telemetry::series::now(),
        )
    })();
    match result {
        Ok(output) => protocol.answer(StatusCode::OK, &output, request_id),
        Err(err) => {
            tracing::info!(code = err.code, message = %err.message, "API call refused");
            protocol.error(&err, request_id)
        }
    }
}
