//! `verify` against the signer the AWS SDK for Rust uses (`aws-sigv4`, default settings), on
//! the requests fulcrum's Query API receives: every request it signs is accepted, every tamper
//! is refused with AWS's error code; and `sign` agrees with it byte for byte.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign as aws_sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use fulcrum_sigv4::{sign, verify, AuthError, SignedRequest, Verified};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};

const KEY: &str = "AKIAFULCRUMEXAMPLE01";
const SECRET: &str = "w/Jal+rXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
/// The region fulcrum serves in these tests: not us-east-1, so IAM's global scope is exercised.
const REGION: &str = "eu-west-1";
const ELB: &str = "elasticloadbalancing";
const IAM: &str = "iam";
const SERVICES: &[&str] = &[ELB, IAM];
const ENDPOINT: &str = "http://127.0.0.1:9900";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
const DESCRIBE: &str =
    "Action=DescribeLoadBalancers&Version=2012-06-01&LoadBalancerNames.member.1=a%20b";

/// 2024-02-29T13:14:15Z.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_709_212_455)
}

/// A request as it would be signed by a client.
#[derive(Clone)]
struct Spec {
    method: &'static str,
    /// Absolute, already percent-encoded, as the SDKs build it.
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    region: &'static str,
    service: &'static str,
    time: SystemTime,
    secret: &'static str,
    key: &'static str,
}

impl Spec {
    fn post(body: &str) -> Spec {
        Spec {
            method: "POST",
            uri: format!("{ENDPOINT}/"),
            headers: vec![
                ("content-type", FORM.to_owned()),
                ("user-agent", "aws-cli/2.15.0 Python/3.11.6".to_owned()),
            ],
            body: body.as_bytes().to_vec(),
            region: REGION,
            service: ELB,
            time: t0(),
            secret: SECRET,
            key: KEY,
        }
    }

    fn get(path_and_query: &str) -> Spec {
        Spec {
            method: "GET",
            uri: format!("{ENDPOINT}{path_and_query}"),
            headers: vec![("user-agent", "aws-sdk-rust/1.0".to_owned())],
            body: Vec::new(),
            ..Spec::post("")
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Spec {
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// What arrives at the server: the method, the URI, the headers (with `Host`, as an HTTP/1.1
/// client sends it, unless `http2`: then the URI keeps its authority, as hyper gives
/// HTTP/2's `:authority`), and the body.
struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn as_signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn verify_at(&self, now: SystemTime) -> Result<Verified, AuthError> {
        verify(&self.as_signed(), REGION, SERVICES, now, |key| {
            (key == KEY).then(|| SECRET.to_owned())
        })
    }

    fn verify(&self) -> Result<Verified, AuthError> {
        self.verify_at(t0())
    }

    fn set_query(&mut self, query: &str) {
        let path = self.uri.path();
        self.uri = format!("{path}?{query}").parse().unwrap();
    }
}

/// Signs with `aws-sigv4` (the AWS SDK for Rust's signer), default settings.
fn aws_signed(
    spec: &Spec,
    location: SignatureLocation,
    expires: Option<Duration>,
) -> Request<Vec<u8>> {
    let identity: Identity = Credentials::new(spec.key, spec.secret, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = location;
    settings.expires_in = expires;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(spec.region)
        .name(spec.service)
        .time(spec.time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        spec.method,
        Cow::Borrowed(spec.uri.as_str()),
        spec.headers.iter().map(|(n, v)| (*n, v.as_str())),
        SignableBody::Bytes(&spec.body),
    )
    .unwrap();
    let (instructions, _signature) = aws_sign(signable, &params).unwrap().into_parts();
    let mut req = Request::builder()
        .method(spec.method)
        .uri(spec.uri.as_str());
    for (name, value) in &spec.headers {
        req = req.header(*name, value.as_str());
    }
    let mut req = req.body(spec.body.clone()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    req
}

/// The request as an HTTP/1.1 server receives it: origin-form URI, `Host` from the authority
/// (without a default port, as hyper's client sends it).
fn received(req: Request<Vec<u8>>) -> Received {
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    if !headers.contains_key("host") {
        let authority = parts.uri.authority().unwrap();
        let host = match (parts.uri.scheme_str(), authority.port_u16()) {
            (Some("http"), Some(80)) | (Some("https"), Some(443)) => authority.host(),
            _ => authority.as_str(),
        };
        headers.insert("host", HeaderValue::from_str(host).unwrap());
    }
    let uri = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .parse()
        .unwrap();
    Received {
        method: parts.method,
        uri,
        headers,
        body,
    }
}

/// The request as an HTTP/2 server receives it: absolute URI, no `Host` header.
fn received_http2(req: Request<Vec<u8>>) -> Received {
    let (parts, body) = req.into_parts();
    Received {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
    }
}

fn by_header(spec: &Spec) -> Received {
    received(aws_signed(spec, SignatureLocation::Headers, None))
}

fn presigned(spec: &Spec, expires: Duration) -> Received {
    received(aws_signed(
        spec,
        SignatureLocation::QueryParams,
        Some(expires),
    ))
}

/// The requests fulcrum's clients send, in all their variety.
fn accepted_specs() -> Vec<(&'static str, Spec)> {
    let reserved = "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D%25";
    vec![
        ("POST form", Spec::post(DESCRIBE)),
        (
            "POST form with unicode and reserved characters",
            Spec::post(&format!(
                "Action=AddTags&Version=2012-06-01&LoadBalancerNames.member.1=web\
                 &Tags.member.1.Key=%E2%9C%93%20caf%C3%A9&Tags.member.1.Value={reserved}~-._"
            )),
        ),
        (
            "POST with an empty body",
            Spec::post(""),
        ),
        (
            "POST IAM signed for us-east-1 (global)",
            Spec {
                service: IAM,
                region: "us-east-1",
                ..Spec::post("Action=ListServerCertificates&Version=2010-05-08")
            },
        ),
        (
            "POST IAM signed for the endpoint's region",
            Spec {
                service: IAM,
                ..Spec::post("Action=ListServerCertificates&Version=2010-05-08")
            },
        ),
        (
            "GET with query parameters",
            Spec::get("/?Action=DescribeLoadBalancers&Version=2012-06-01&LoadBalancerNames.member.1=a%20b"),
        ),
        (
            "GET with unicode, reserved characters and unsorted, repeated names",
            Spec::get(&format!(
                "/?Version=2012-06-01&Action=DescribeTags&LoadBalancerNames.member.2=%E2%9C%93\
                 &LoadBalancerNames.member.1={reserved}&Z=2&Z=1&a=&Empty"
            )),
        ),
        (
            "GET with + for a space",
            Spec::get("/?Action=DescribeLoadBalancers&Version=2012-06-01&Marker=a+b"),
        ),
        (
            "GET with a percent-encoded path",
            Spec::get("/some%20path/caf%C3%A9/%2541?Action=DescribeAccountLimits"),
        ),
        (
            "GET with dot segments and double slashes in the path",
            Spec::get("//a/./b/../c?Action=DescribeAccountLimits"),
        ),
        (
            "signed header with repeated spaces",
            Spec::post(DESCRIBE).header("x-fulcrum-note", "  a   b    c  "),
        ),
        (
            "signed header with several values",
            Spec::post(DESCRIBE)
                .header("x-fulcrum-multi", "one")
                .header("x-fulcrum-multi", "two  three"),
        ),
        (
            "SDK headers: x-amz-user-agent signed, user-agent and x-amzn-trace-id not",
            Spec::post(DESCRIBE)
                .header("x-amz-user-agent", "aws-sdk-rust/1.1.0 api/elasticloadbalancing/1.0")
                .header("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793")
                .header("amz-sdk-invocation-id", "0b3f3b5c-7e32-4c2a-9e55-1c6e2a0c3f10")
                .header("amz-sdk-request", "attempt=1; max=3"),
        ),
        (
            "x-amz-content-sha256 signed (boto3 with payload signing on)",
            Spec::post(DESCRIBE).header("x-amz-content-sha256", &hex_sha256(DESCRIBE.as_bytes())),
        ),
        (
            "endpoint on a default port",
            Spec {
                uri: "https://fulcrum.example.com:443/".to_owned(),
                ..Spec::post(DESCRIBE)
            },
        ),
        (
            "endpoint by name, without port",
            Spec {
                uri: "http://fulcrum.internal/".to_owned(),
                ..Spec::post(DESCRIBE)
            },
        ),
    ]
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

fn expect_err(r: Result<Verified, AuthError>, code: &str, status: u16, what: &str) -> AuthError {
    let err = r.expect_err(what);
    assert_eq!(err.code(), code, "{what}: {err:?}");
    assert_eq!(err.http_status(), status, "{what}: {err:?}");
    err
}

#[test]
fn accepts_everything_the_sdk_signer_signs() {
    for (what, spec) in accepted_specs() {
        for (form, req) in [
            ("header, HTTP/1.1", by_header(&spec)),
            (
                "header, HTTP/2",
                received_http2(aws_signed(&spec, SignatureLocation::Headers, None)),
            ),
            ("presigned", presigned(&spec, Duration::from_secs(900))),
            (
                "presigned, HTTP/2",
                received_http2(aws_signed(
                    &spec,
                    SignatureLocation::QueryParams,
                    Some(Duration::from_secs(604_800)),
                )),
            ),
        ] {
            let v = req
                .verify()
                .unwrap_or_else(|e| panic!("{what} ({form}) refused: {e:?}"));
            assert_eq!(
                v,
                Verified {
                    access_key_id: KEY.to_owned(),
                    region: spec.region.to_owned(),
                    service: spec.service.to_owned(),
                    signed_at: t0(),
                },
                "{what} ({form})"
            );
        }
    }
}

#[test]
fn accepts_a_clock_skew_up_to_15_minutes() {
    let req = by_header(&Spec::post(DESCRIBE));
    for skew in [0, 1, 60, 899, 900] {
        let d = Duration::from_secs(skew);
        assert!(req.verify_at(t0() + d).is_ok(), "+{skew}s");
        assert!(req.verify_at(t0() - d).is_ok(), "-{skew}s");
    }
}

#[test]
fn refuses_a_wrong_secret() {
    let spec = Spec {
        secret: "not-the-secret",
        ..Spec::post(DESCRIBE)
    };
    let err = expect_err(
        by_header(&spec).verify(),
        "SignatureDoesNotMatch",
        403,
        "wrong secret",
    );
    assert!(matches!(err, AuthError::BadSignature));
    assert_eq!(
        err.to_string(),
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method."
    );
    let err = expect_err(
        presigned(&spec, Duration::from_secs(60)).verify(),
        "SignatureDoesNotMatch",
        403,
        "wrong secret, presigned",
    );
    assert!(matches!(err, AuthError::BadSignature));
}

#[test]
fn refuses_an_unknown_key() {
    let spec = Spec {
        key: "AKIANOSUCHKEY0000000",
        ..Spec::post(DESCRIBE)
    };
    for req in [by_header(&spec), presigned(&spec, Duration::from_secs(60))] {
        let err = expect_err(req.verify(), "InvalidClientTokenId", 403, "unknown key");
        assert_eq!(
            err,
            AuthError::UnknownKey("AKIANOSUCHKEY0000000".to_owned())
        );
        assert_eq!(
            err.to_string(),
            "The security token included in the request is invalid."
        );
    }
}

#[test]
fn refuses_a_body_changed_by_one_byte() {
    let mut req = by_header(&Spec::post(DESCRIBE));
    let last = req.body.len() - 1;
    req.body[last] = b'c';
    let err = expect_err(req.verify(), "SignatureDoesNotMatch", 403, "body changed");
    assert!(matches!(err, AuthError::BadSignature));

    let mut req = by_header(&Spec::post(DESCRIBE));
    req.body.push(b'&');
    expect_err(req.verify(), "SignatureDoesNotMatch", 403, "body extended");

    // A presigned request covers the body too.
    let mut req = presigned(&Spec::post(DESCRIBE), Duration::from_secs(60));
    req.body[0] = b'a';
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "presigned body changed",
    );
}

#[test]
fn refuses_a_body_that_x_amz_content_sha256_does_not_describe() {
    let spec =
        Spec::post(DESCRIBE).header("x-amz-content-sha256", &hex_sha256(DESCRIBE.as_bytes()));
    let mut req = by_header(&spec);
    req.body = b"Action=DeleteLoadBalancer&Version=2012-06-01&LoadBalancerName=web".to_vec();
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "hash header kept, body changed",
    );

    // UNSIGNED-PAYLOAD never lets a body through unsigned.
    let spec = Spec::post(DESCRIBE).header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    expect_err(
        by_header(&spec).verify(),
        "SignatureDoesNotMatch",
        403,
        "UNSIGNED-PAYLOAD body",
    );
}

#[test]
fn refuses_a_changed_signed_header_but_not_an_unsigned_one() {
    let mut req = by_header(&Spec::post(DESCRIBE).header("x-fulcrum-note", "a b"));
    req.headers
        .insert("x-fulcrum-note", HeaderValue::from_static("a  b c"));
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "signed header changed",
    );

    let mut req = by_header(&Spec::post(DESCRIBE));
    req.headers
        .insert("content-type", HeaderValue::from_static("text/plain"));
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "content-type changed",
    );

    let mut req = by_header(&Spec::post(DESCRIBE));
    req.headers
        .insert("host", HeaderValue::from_static("127.0.0.1:9901"));
    expect_err(req.verify(), "SignatureDoesNotMatch", 403, "host changed");

    let mut req = by_header(&Spec::post(DESCRIBE));
    req.headers.remove("content-type");
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "signed header removed",
    );

    // Headers outside SignedHeaders may change (proxies rewrite user-agent).
    let mut req = by_header(&Spec::post(DESCRIBE));
    req.headers
        .insert("user-agent", HeaderValue::from_static("curl/8.0"));
    req.headers
        .insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    assert!(req.verify().is_ok());
}

#[test]
fn refuses_an_added_or_changed_query_parameter() {
    let spec = Spec::get("/?Action=DescribeLoadBalancers&Version=2012-06-01");
    let mut req = by_header(&spec);
    req.set_query("Action=DescribeLoadBalancers&Version=2012-06-01&PageSize=1");
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "query param added",
    );

    let mut req = by_header(&Spec::post(DESCRIBE));
    req.set_query("Action=DeleteLoadBalancer");
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "query added to a POST",
    );

    let mut req = presigned(&spec, Duration::from_secs(300));
    let query = req.uri.query().unwrap().to_owned();
    req.set_query(&format!("{query}&LoadBalancerName=web"));
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "presigned param added",
    );

    let mut req = presigned(&spec, Duration::from_secs(300));
    let query = req
        .uri
        .query()
        .unwrap()
        .replace("DescribeLoadBalancers", "DeleteLoadBalancer");
    req.set_query(&query);
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "presigned param changed",
    );

    // Lengthening X-Amz-Expires is changing a signed parameter.
    let mut req = presigned(&spec, Duration::from_secs(300));
    let query = req
        .uri
        .query()
        .unwrap()
        .replace("X-Amz-Expires=300", "X-Amz-Expires=3000");
    req.set_query(&query);
    expect_err(
        req.verify(),
        "SignatureDoesNotMatch",
        403,
        "presigned expiry lengthened",
    );
}

#[test]
fn refuses_a_wrong_region_or_service() {
    for spec in [
        Spec {
            region: "us-west-2",
            ..Spec::post(DESCRIBE)
        },
        Spec {
            region: "us-east-1",
            ..Spec::post(DESCRIBE)
        },
    ] {
        for req in [by_header(&spec), presigned(&spec, Duration::from_secs(60))] {
            let err = expect_err(req.verify(), "SignatureDoesNotMatch", 403, "wrong region");
            assert!(matches!(err, AuthError::WrongScope(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "Credential should be scoped to a valid region, not '{}'. \
                     This endpoint serves '{REGION}'.",
                    spec.region
                )
            );
        }
    }
    // IAM is global, but only as us-east-1.
    let spec = Spec {
        service: IAM,
        region: "us-west-2",
        ..Spec::post("Action=ListServerCertificates&Version=2010-05-08")
    };
    let err = expect_err(
        by_header(&spec).verify(),
        "SignatureDoesNotMatch",
        403,
        "iam region",
    );
    assert!(matches!(err, AuthError::WrongScope(_)), "{err:?}");

    for service in ["ec2", "elasticloadbalancingv2", "s3", "IAM"] {
        let spec = Spec {
            service,
            ..Spec::post(DESCRIBE)
        };
        for req in [by_header(&spec), presigned(&spec, Duration::from_secs(60))] {
            let err = expect_err(req.verify(), "SignatureDoesNotMatch", 403, service);
            assert!(matches!(err, AuthError::WrongScope(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "Credential should be scoped to correct service: \
                     'elasticloadbalancing' or 'iam', not '{service}'. "
                )
            );
        }
    }
}

#[test]
fn refuses_a_scope_date_other_than_the_request_date() {
    // Signed at 23:59:30; X-Amz-Date moved to the next day, within the allowed skew.
    let signed = UNIX_EPOCH + Duration::from_secs(1_709_251_170);
    let mut req = by_header(&Spec {
        time: signed,
        ..Spec::post(DESCRIBE)
    });
    assert_eq!(req.headers["x-amz-date"], "20240229T235930Z");
    req.headers
        .insert("x-amz-date", HeaderValue::from_static("20240301T000030Z"));
    let err = expect_err(
        req.verify_at(signed),
        "SignatureDoesNotMatch",
        403,
        "scope date",
    );
    assert_eq!(
        err,
        AuthError::WrongScope(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '20240229' != '20240301', from 'X-Amz-Date'."
                .to_owned()
        )
    );
}

#[test]
fn refuses_a_date_16_minutes_off() {
    let sixteen = Duration::from_secs(16 * 60);
    let old = Spec {
        time: t0() - sixteen,
        ..Spec::post(DESCRIBE)
    };
    let err = expect_err(
        by_header(&old).verify(),
        "RequestExpired",
        400,
        "16 min old",
    );
    assert_eq!(
        err.to_string(),
        "Signature expired: 20240229T125815Z is now earlier than 20240229T125915Z \
         (20240229T131415Z - 15 min.)"
    );
    let future = Spec {
        time: t0() + sixteen,
        ..Spec::post(DESCRIBE)
    };
    let err = expect_err(
        by_header(&future).verify(),
        "RequestExpired",
        400,
        "16 min ahead",
    );
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20240229T133015Z is still later than 20240229T132915Z \
         (20240229T131415Z + 15 min.)"
    );
    // A presigned URL cannot be dated in the future either.
    expect_err(
        presigned(&future, Duration::from_secs(3600)).verify(),
        "RequestExpired",
        400,
        "presigned ahead",
    );
    // An expired request is refused even with the right key, and before the key is looked up.
    let req = by_header(&old);
    let err = verify(&req.as_signed(), REGION, SERVICES, t0(), |_| {
        panic!("no key lookup for an expired request")
    })
    .unwrap_err();
    assert!(matches!(err, AuthError::Expired(_)));
}

#[test]
fn refuses_a_presigned_url_past_x_amz_expires() {
    let req = presigned(
        &Spec::get("/?Action=DescribeLoadBalancers&Version=2012-06-01"),
        Duration::from_secs(60),
    );
    assert!(req.verify_at(t0() + Duration::from_secs(60)).is_ok());
    let err = expect_err(
        req.verify_at(t0() + Duration::from_secs(61)),
        "RequestExpired",
        400,
        "presigned expired",
    );
    assert_eq!(err.to_string(), "Request has expired.");

    // A long-lived presigned URL outlives the 15-minute skew of header signing.
    let req = presigned(&Spec::post(DESCRIBE), Duration::from_secs(604_800));
    assert!(req.verify_at(t0() + Duration::from_secs(604_800)).is_ok());
    expect_err(
        req.verify_at(t0() + Duration::from_secs(604_801)),
        "RequestExpired",
        400,
        "week-long URL expired",
    );

    // More than a week is refused outright.
    let req = presigned(&Spec::post(DESCRIBE), Duration::from_secs(604_801));
    let err = expect_err(req.verify(), "IncompleteSignature", 400, "expires > a week");
    assert_eq!(
        err.to_string(),
        "X-Amz-Expires must be less than a week (in seconds) that is 604800"
    );
}

#[test]
fn refuses_a_request_without_authentication() {
    let req = Received {
        method: Method::POST,
        uri: "/".parse().unwrap(),
        headers: {
            let mut h = HeaderMap::new();
            h.insert("host", HeaderValue::from_static("127.0.0.1:9900"));
            h.insert("content-type", HeaderValue::from_static(FORM));
            h.insert("x-amz-date", HeaderValue::from_static("20240229T131415Z"));
            h
        },
        body: DESCRIBE.as_bytes().to_vec(),
    };
    let err = expect_err(req.verify(), "MissingAuthenticationToken", 403, "no auth");
    assert_eq!(err, AuthError::Missing);
    assert_eq!(err.to_string(), "Request is missing Authentication Token");

    let mut get = req;
    get.method = Method::GET;
    get.set_query(DESCRIBE);
    assert_eq!(get.verify().unwrap_err(), AuthError::Missing);
}

fn with_authorization(value: &[u8]) -> Received {
    let mut req = by_header(&Spec::post(DESCRIBE));
    req.headers
        .insert("authorization", HeaderValue::from_bytes(value).unwrap());
    req
}

#[test]
fn refuses_garbage_authorization() {
    let good = by_header(&Spec::post(DESCRIBE));
    let good = good.headers["authorization"].to_str().unwrap().to_owned();
    let no_host = good.replace(
        "SignedHeaders=content-type;host;",
        "SignedHeaders=content-type;",
    );
    assert_ne!(no_host, good);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"garbage".to_vec(),
            "Unsupported AWS 'algorithm': 'garbage'",
        ),
        (
            b"Bearer eyJhbGciOi".to_vec(),
            "Unsupported AWS 'algorithm': 'Bearer'",
        ),
        (
            b"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=".to_vec(),
            "Unsupported",
        ),
        (
            b"AWS4-HMAC-SHA256".to_vec(),
            "requires 'Credential' parameter",
        ),
        (
            b"AWS4-HMAC-SHA256 garbage".to_vec(),
            "not a valid key=value pair",
        ),
        (
            good.replace("SignedHeaders", "Signedheaders").into_bytes(),
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            good.replace("Signature=", "Signature=zz").into_bytes(),
            "Signature should be 64 hexadecimal characters",
        ),
        (
            format!("{good}, Signature=00").into_bytes(),
            "more than once",
        ),
        (
            good.replace("/aws4_request", "/aws4_reques").into_bytes(),
            "valid terminator",
        ),
        (
            good.replace(&format!("{KEY}/"), "").into_bytes(),
            "Credential should have the form",
        ),
        (
            no_host.into_bytes(),
            "'Host' or ':authority' must be a 'SignedHeader'",
        ),
        (
            good.replace("content-type;host", "Content-Type;host")
                .into_bytes(),
            "lower-case header names",
        ),
        (
            good.replace("content-type;host", "content-type;;host")
                .into_bytes(),
            "lower-case header names",
        ),
        (
            good.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256")
                .into_bytes(),
            "Unsupported AWS 'algorithm'",
        ),
        (
            b"AWS4-HMAC-SHA256 Credential=\xff\xfe".to_vec(),
            "not ASCII",
        ),
    ];
    for (value, expected) in cases {
        let shown = String::from_utf8_lossy(&value).into_owned();
        let err = expect_err(
            with_authorization(&value).verify(),
            "IncompleteSignature",
            400,
            &shown,
        );
        assert!(matches!(err, AuthError::Malformed(_)), "{shown}: {err:?}");
        assert!(
            err.to_string().contains(expected),
            "{shown}: {err} should mention {expected:?}"
        );
    }
}

#[test]
fn refuses_a_request_without_a_date_or_with_both_mechanisms() {
    let mut req = by_header(&Spec::post(DESCRIBE));
    req.headers.remove("x-amz-date");
    let err = expect_err(req.verify(), "IncompleteSignature", 400, "no date");
    assert_eq!(
        err.to_string(),
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    );

    let mut req = by_header(&Spec::post(DESCRIBE));
    req.headers.insert(
        "x-amz-date",
        HeaderValue::from_static("2024-02-29T13:14:15Z"),
    );
    expect_err(req.verify(), "IncompleteSignature", 400, "bad date");

    let mut req = presigned(&Spec::post(DESCRIBE), Duration::from_secs(60));
    let header = by_header(&Spec::post(DESCRIBE)).headers["authorization"].clone();
    req.headers.insert("authorization", header);
    let err = expect_err(req.verify(), "IncompleteSignature", 400, "two mechanisms");
    assert!(err
        .to_string()
        .starts_with("Only one auth mechanism allowed"));

    let mut req = by_header(&Spec::post(DESCRIBE));
    let header = req.headers["authorization"].clone();
    req.headers.append("authorization", header);
    expect_err(
        req.verify(),
        "IncompleteSignature",
        400,
        "two Authorization headers",
    );
}

#[test]
fn refuses_incomplete_or_odd_presigned_queries() {
    let req = presigned(
        &Spec::get("/?Action=DescribeLoadBalancers"),
        Duration::from_secs(60),
    );
    let query = req.uri.query().unwrap().to_owned();
    let cases = [
        (query.replace("X-Amz-Date=", "X-Amz-Datum="), "X-Amz-Date"),
        (
            query.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=HMAC"),
            "Unsupported X-Amz-Algorithm",
        ),
        (
            query.replace("X-Amz-Expires=60", "X-Amz-Expires=-1"),
            "X-Amz-Expires",
        ),
        (
            query.replace("X-Amz-Expires=60", "X-Amz-Expires=0"),
            "X-Amz-Expires",
        ),
        (
            query.replace("X-Amz-Expires=60", "X-Amz-Expires=99999999999999999999999"),
            "X-Amz-Expires",
        ),
        (format!("{query}&X-Amz-Signature=00"), "more than once"),
        (
            query.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date"),
            "'Host'",
        ),
        (
            query.replace("X-Amz-Credential=", "X-Amz-Credential=%FF"),
            "UTF-8",
        ),
    ];
    for (q, expected) in cases {
        let mut r = presigned(
            &Spec::get("/?Action=DescribeLoadBalancers"),
            Duration::from_secs(60),
        );
        r.set_query(&q);
        let err = expect_err(r.verify(), "IncompleteSignature", 400, &q);
        assert!(err.to_string().contains(expected), "{q}: {err}");
    }
}

/// A deterministic xorshift, for the hostile-input test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn hostile_input_never_panics() {
    let good = by_header(&Spec::post(DESCRIBE));
    let good_auth = good.headers["authorization"].to_str().unwrap().to_owned();
    let pieces = [
        "AWS4-HMAC-SHA256",
        " ",
        ",",
        "=",
        "/",
        ";",
        "Credential",
        "SignedHeaders",
        "Signature",
        "aws4_request",
        "host",
        "%",
        "%F",
        "%ZZ",
        "%FF",
        "+",
        "&",
        "é",
        "\u{1F600}",
        "",
        "x-amz-date",
        KEY,
        "20240229",
        REGION,
        ELB,
        "0123456789abcdef",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let mut s = String::new();
        for _ in 0..(rng.next() % 40) {
            s.push_str(rng.pick(&pieces));
        }
        // Header-signed: a random Authorization value (as bytes, so non-UTF-8 too).
        let mut bytes = s.clone().into_bytes();
        if round % 3 == 0 {
            bytes.push(0xff);
        }
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let mut req = good.clone_received();
            req.headers.insert("authorization", value);
            let _ = req.verify();
        }
        // Mutations of a good header.
        let cut = (rng.next() as usize) % (good_auth.len() + 1);
        if good_auth.is_char_boundary(cut) {
            let mut req = good.clone_received();
            let mutated = format!("{}{}{}", &good_auth[..cut], s, &good_auth[cut..]);
            if let Ok(v) = HeaderValue::from_str(&mutated) {
                req.headers.insert("authorization", v);
                let _ = req.verify();
            }
        }
        // Presigned: a random query string with the X-Amz parameters.
        let q = format!(
            "X-Amz-Algorithm={}&X-Amz-Credential={}&X-Amz-Date={}&X-Amz-Expires={}&X-Amz-SignedHeaders={}&X-Amz-Signature={}",
            rng.pick(&pieces), s, rng.pick(&pieces), rng.pick(&pieces), rng.pick(&pieces), s
        );
        let encoded: String = q
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() {
                    c.to_string()
                } else {
                    format!("%{:02X}", c as u32 & 0xff)
                }
            })
            .collect();
        if let Ok(uri) = format!(
            "/{}?{}",
            rng.pick(&["", "a/../..", "%2e%2e", "//"]),
            encoded
        )
        .parse::<Uri>()
        {
            let mut req = good.clone_received();
            req.headers.remove("authorization");
            req.uri = uri;
            assert!(req.verify().is_err());
        }
    }
    // Oversized values.
    let huge = "a".repeat(1 << 20);
    let mut req = good.clone_received();
    req.headers.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential={huge}, SignedHeaders={huge}, Signature={huge}"
        ))
        .unwrap(),
    );
    let err = req.verify().unwrap_err();
    assert!(err.to_string().len() < 1000, "error messages stay short");
    let mut req = good.clone_received();
    req.headers
        .insert("x-amz-date", HeaderValue::from_str(&huge).unwrap());
    assert!(matches!(req.verify(), Err(AuthError::Malformed(_))));
    let mut req = good.clone_received();
    req.headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("AWS4-HMAC-SHA256 {}", ",".repeat(1 << 20))).unwrap(),
    );
    assert!(matches!(req.verify(), Err(AuthError::Malformed(_))));
}

impl Received {
    fn clone_received(&self) -> Received {
        Received {
            method: self.method.clone(),
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }
}

/// `sign` then `verify`, on the same variety of requests.
#[test]
fn sign_round_trips_through_verify() {
    for (what, spec) in accepted_specs() {
        let mut req = Request::builder()
            .method(spec.method)
            .uri(spec.uri.as_str());
        for (name, value) in &spec.headers {
            req = req.header(*name, value.as_str());
        }
        let mut req = req.body(spec.body.clone()).unwrap();
        sign(
            &mut req,
            spec.key,
            spec.secret,
            spec.region,
            spec.service,
            spec.time,
        )
        .unwrap();
        assert!(
            !req.headers().contains_key("x-amz-content-sha256")
                || spec
                    .headers
                    .iter()
                    .any(|(n, _)| *n == "x-amz-content-sha256")
        );
        let v = received(req)
            .verify()
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(v.service, spec.service, "{what}");
    }
}

/// `sign` writes the very Authorization header the AWS SDK's signer writes for the same request
/// (host, x-amz-date and content-type only, which is all `sign` signs and all the SDK signs
/// besides user-agent, which it leaves out).
#[test]
fn sign_matches_the_sdk_signer() {
    let specs = [
        Spec::post(DESCRIBE),
        Spec::post(""),
        Spec {
            service: IAM,
            region: "us-east-1",
            ..Spec::post("Action=UploadServerCertificate&Version=2010-05-08&ServerCertificateName=www&CertificateBody=-----BEGIN%20CERTIFICATE-----%0AMIIB")
        },
        Spec::get("/?Action=DescribeLoadBalancers&Version=2012-06-01&LoadBalancerNames.member.1=%E2%9C%93&Marker=a+b"),
        Spec::get("/a%20b/./c//?Z=1&A=%7e"),
        Spec {
            uri: "https://fulcrum.example.com:443/".to_owned(),
            ..Spec::post(DESCRIBE)
        },
        Spec {
            uri: "http://[::1]:9900/".to_owned(),
            ..Spec::post(DESCRIBE)
        },
    ];
    for spec in specs {
        let theirs = aws_signed(&spec, SignatureLocation::Headers, None);
        let mut ours = Request::builder()
            .method(spec.method)
            .uri(spec.uri.as_str());
        for (name, value) in &spec.headers {
            ours = ours.header(*name, value.as_str());
        }
        let mut ours = ours.body(spec.body.clone()).unwrap();
        sign(
            &mut ours,
            spec.key,
            spec.secret,
            spec.region,
            spec.service,
            spec.time,
        )
        .unwrap();
        assert_eq!(
            ours.headers()["authorization"],
            theirs.headers()["authorization"],
            "{}",
            spec.uri
        );
        assert_eq!(ours.headers()["x-amz-date"], theirs.headers()["x-amz-date"]);
    }
}

#[test]
fn sign_and_verify_handle_header_values_that_are_not_utf8() {
    let mut req = Request::builder()
        .method("POST")
        .uri("http://127.0.0.1:9900/")
        .header(
            "content-type",
            HeaderValue::from_bytes(b"application/x-www-form-urlencoded;  x=\xe9\xff").unwrap(),
        )
        .body(DESCRIBE.as_bytes().to_vec())
        .unwrap();
    sign(&mut req, KEY, SECRET, REGION, ELB, t0()).unwrap();
    let mut req = received(req);
    assert!(req.verify().is_ok());
    req.headers.insert(
        "content-type",
        HeaderValue::from_bytes(b"application/x-www-form-urlencoded;  x=\xe9\xfe").unwrap(),
    );
    assert_eq!(req.verify().unwrap_err(), AuthError::BadSignature);
}

#[test]
fn sign_replaces_a_previous_signature_and_needs_a_host() {
    let mut req = Request::builder()
        .method("POST")
        .uri("http://127.0.0.1:9900/")
        .header("content-type", FORM)
        .header("authorization", "stale")
        .header("x-amz-date", "19990101T000000Z")
        .body(DESCRIBE.as_bytes().to_vec())
        .unwrap();
    sign(&mut req, KEY, SECRET, REGION, ELB, t0()).unwrap();
    assert_eq!(req.headers().get_all("authorization").iter().count(), 1);
    assert_eq!(req.headers()["x-amz-date"], "20240229T131415Z");
    assert_eq!(req.headers()["host"], "127.0.0.1:9900");
    assert!(received(req).verify().is_ok());

    let mut relative = Request::builder()
        .method("POST")
        .uri("/")
        .body(Vec::new())
        .unwrap();
    assert!(matches!(
        sign(&mut relative, KEY, SECRET, REGION, ELB, t0()),
        Err(AuthError::Malformed(_))
    ));
    // With a Host header, a relative URI is fine.
    relative
        .headers_mut()
        .insert("host", HeaderValue::from_static("localhost:9900"));
    sign(&mut relative, KEY, SECRET, REGION, ELB, t0()).unwrap();
    assert!(received(relative).verify().is_ok());
    let mut req = Request::builder()
        .uri("http://h/")
        .body(Vec::new())
        .unwrap();
    assert!(sign(&mut req, "AKIA/X", SECRET, REGION, ELB, t0()).is_err());
}
