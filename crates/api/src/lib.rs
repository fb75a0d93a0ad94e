//! fulcrum's AWS-compatible control API: the Query protocol on `POST /` (and `GET` with query
//! parameters), SigV4 on every call, and the actions of ELB `2012-06-01` and IAM's server
//! certificates; CloudWatch's metric reads for `AWS/ELB` in `cloudwatch/` (also in the JSON and
//! CBOR protocols today's SDKs send it in). Wire shapes live here only: actions turn parameters
//! into model changes that go through the store, and model values into XML.

#![forbid(unsafe_code)]

mod access;
mod access_log_tail;
mod cloudwatch;
mod ec2;
mod elb;
mod error;
mod iam;
mod params;
mod server;
mod time;
mod xml;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fulcrum_control::Control;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

pub use error::ApiError;
pub use fulcrum_control::fleet::{node_record, NodeIdentity};
pub use fulcrum_control::Pause;
pub use params::Params;
pub use server::{serve_api, ApiLimits};

pub const ELB_NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/";
pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
pub const ELB_SERVICE: &str = "elasticloadbalancing";
pub const IAM_SERVICE: &str = "iam";

/// Requests larger than this are refused before they are read further.
const MAX_BODY: usize = 1 << 20;

/// An answer's body: a whole XML document for almost every call, a stream for the access-log
/// tail.
pub type ApiBody = BoxBody<Bytes, Infallible>;

/// The API of one node: an adapter from the AWS wire protocols to the service layer.
pub struct Api {
    /// Every action's rules, and what the node sees.
    pub control: Arc<Control>,
    /// The web console at `/console/`, served on the same address.
    pub console: Option<Arc<fulcrum_console::Console>>,
}

/// What an action works with.
pub(crate) struct Call<'a> {
    /// The service layer every action runs through.
    pub(crate) ctl: &'a Control,
    pub(crate) params: &'a Params,
    pub(crate) request_id: &'a str,
    /// Seconds since the Unix epoch.
    pub(crate) now: u64,
}

impl Api {
    /// Answers one API request.
    pub async fn handle<B>(self: &Arc<Self>, req: Request<B>) -> Response<ApiBody>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = request_id();
        let (parts, body) = req.into_parts();
        let body = match fulcrum_console::read_wiped(body, MAX_BODY).await {
            Ok(body) => body,
            Err(e) => {
                let err = if e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    ApiError::new(
                        "RequestEntityTooLarge",
                        "the request body is larger than 1 MiB",
                    )
                } else {
                    ApiError::malformed(format!("the request body could not be read: {e}"))
                };
                return error_response(&err, Service::claimed(&parts), &request_id);
            }
        };
        let this = Arc::clone(self);
        let rid = request_id.clone();
        if let Some(protocol) = cloudwatch::Protocol::of(&parts) {
            // CloudWatch in JSON or CBOR, answered in kind, on the blocking pool like the rest.
            let outcome = tokio::task::spawn_blocking(move || {
                cloudwatch::rpc(&this, protocol, &parts, &body, &rid)
            });
            return outcome.await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "API action panicked");
                protocol.error(&ApiError::internal("internal error"), &request_id)
            });
        }
        // Actions read and write SQLite, which blocks: they run on the blocking pool.
        let outcome = tokio::task::spawn_blocking(move || this.call(&parts, &body, &rid)).await;
        match outcome {
            Ok((Ok(Answer::Xml(xml)), _)) => {
                with_request_id(xml_response(StatusCode::OK, xml), &request_id)
            }
            Ok((Ok(Answer::Lines(body)), _)) => {
                let mut resp = Response::new(body);
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                with_request_id(resp, &request_id)
            }
            Ok((Err(err), service)) => error_response(&err, service, &request_id),
            Err(e) => {
                tracing::error!(error = %e, "API action panicked");
                error_response(
                    &ApiError::internal("internal error"),
                    Service::Elb,
                    &request_id,
                )
            }
        }
    }

    /// Authenticates, parses and runs one call; returns its XML or its error with the service
    /// it was for (whose shape the error takes).
    fn call(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        request_id: &str,
    ) -> (Result<Answer, ApiError>, Service) {
        let mut service = Service::claimed(parts);
        let _running = self.control.pause.enter();
        let result = (|| {
            if parts.method != Method::POST && parts.method != Method::GET {
                return Err(ApiError::new(
                    "InvalidAction",
                    "the API answers POST / and GET / only",
                ));
            }
            if parts.uri.path() != "/" {
                return Err(ApiError::new(
                    "InvalidAction",
                    format!("no API at {}", parts.uri.path()),
                ));
            }
            let (verified, scope) = self.admit(
                parts,
                body,
                &[
                    ELB_SERVICE,
                    IAM_SERVICE,
                    ec2::EC2_SERVICE,
                    cloudwatch::SERVICE,
                ],
            )?;
            let mut params = Params::default();
            if let Some(query) = parts.uri.query() {
                params.extend(query.as_bytes())?;
            }
            if parts.method == Method::POST {
                params.extend(body)?;
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let call = Call {
                ctl: &self.control,
                params: &params,
                request_id,
                now,
            };
            let action = params.get("Action").ok_or_else(|| {
                ApiError::new(
                    "MissingAction",
                    "the request must contain the parameter Action",
                )
            })?;
            service = Service::named(&verified.service);
            if service == Service::Elb && action == access_log_tail::ACTION {
                // Read-only: every key may.
                access::authorize(scope, &self.control.account, &verified.service, action)?;
                return access_log_tail::start(&call).map(Answer::Lines);
            }
            let outcome =
                access::authorize(scope, &self.control.account, &verified.service, action)
                    .and_then(|()| match service {
                        Service::Iam => iam::dispatch(&call, action),
                        Service::Ec2 => ec2::dispatch(&call, action),
                        Service::Elb => elb::dispatch(&call, action),
                        Service::CloudWatch => cloudwatch::dispatch(&call, action),
                    });
            if !access::is_read_only(action) {
                access::audit(&verified.access_key_id, action, &params, &outcome);
            }
            outcome.map(Answer::Xml)
        })();
        if let Err(e) = &result {
            tracing::info!(code = e.code, message = %e.message, "API call refused");
        }
        (result, service)
    }

    /// What every call passes first: refused while the node hands over; otherwise signed,
    /// for one of `services`, by a key the store knows. Returns what the signature says and
    /// the key's scope.
    fn admit(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        services: &[&str],
    ) -> Result<(fulcrum_sigv4::Verified, fulcrum_store::KeyScope), ApiError> {
        if self.control.pause.is_paused() {
            return Err(ApiError::new(
                "ServiceUnavailable",
                "this node is handing over to a new process; retry",
            ));
        }
        let signed = fulcrum_sigv4::SignedRequest {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body,
        };
        let store = &self.control.store;
        // One read of the key gives the secret to check the signature with, and its scope.
        let mut scope = fulcrum_store::KeyScope::ReadOnly;
        let verified = fulcrum_sigv4::verify(
            &signed,
            &self.control.region,
            services,
            SystemTime::now(),
            |key| {
                let (secret, key_scope) = store.access_key(key).ok().flatten()?;
                scope = key_scope;
                Some(secret)
            },
        )?;
        Ok((verified, scope))
    }
}

/// What a call answers.
enum Answer {
    /// The XML document of almost every action.
    Xml(String),
    /// Lines of text, streamed (the access-log tail).
    Lines(ApiBody),
}

/// The AWS service a call is for: ELB, IAM, the one EC2 call ELB clients make, or CloudWatch
/// (in the Query protocol; its JSON and CBOR calls take their own path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Elb,
    Iam,
    Ec2,
    CloudWatch,
}

impl Service {
    fn named(name: &str) -> Service {
        match name {
            IAM_SERVICE => Service::Iam,
            ec2::EC2_SERVICE => Service::Ec2,
            cloudwatch::SERVICE => Service::CloudWatch,
            _ => Service::Elb,
        }
    }

    /// The service the request's credential scope names, before its signature is checked.
    fn claimed(parts: &http::request::Parts) -> Service {
        ec2::claimed_service(&parts.headers, &parts.uri).map_or(Service::Elb, Service::named)
    }

    fn error_xml(self, err: &ApiError, request_id: &str) -> String {
        match self {
            Service::Elb => err.to_xml(ELB_NAMESPACE, request_id),
            Service::Iam => err.to_xml(IAM_NAMESPACE, request_id),
            Service::Ec2 => ec2::error_xml(err, request_id),
            Service::CloudWatch => err.to_xml(cloudwatch::NAMESPACE, request_id),
        }
    }
}

fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn xml_response(status: StatusCode, xml: String) -> Response<ApiBody> {
    let mut resp = Response::new(Full::new(Bytes::from(xml)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    resp
}

fn error_response(err: &ApiError, service: Service, request_id: &str) -> Response<ApiBody> {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    with_request_id(
        xml_response(status, service.error_xml(err, request_id)),
        request_id,
    )
}

/// AWS sends the request id as a header on every answer; the SDKs read it from there.
fn with_request_id(mut resp: Response<ApiBody>, request_id: &str) -> Response<ApiBody> {
    if let Ok(v) = HeaderValue::try_from(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}
