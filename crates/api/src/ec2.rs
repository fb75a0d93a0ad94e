//! The one EC2 call that ELB clients make on the ELB endpoint: Terraform's `aws_elb` destroy
//! asks `DescribeNetworkInterfaces` for what a VPC load balancer leaves behind. fulcrum's load
//! balancers leave no network interfaces, so the answer is an empty set, in EC2's own shape
//! (EC2's XML has no `Result` wrapper and names its request id `requestId`). Every other EC2
//! action is refused in EC2's error shape, which EC2 clients can parse.

use crate::error::ApiError;
use crate::xml::escape;
use crate::Call;

pub(crate) const EC2_SERVICE: &str = "ec2";
const EC2_NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub(crate) fn dispatch(call: &Call<'_>, action: &str) -> Result<String, ApiError> {
    match action {
        "DescribeNetworkInterfaces" => Ok(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><DescribeNetworkInterfacesResponse xmlns="{EC2_NAMESPACE}"><requestId>{}</requestId><networkInterfaceSet/></DescribeNetworkInterfacesResponse>"#,
            call.request_id
        )),
        other => Err(ApiError::new(
            "InvalidAction",
            format!("fulcrum answers only DescribeNetworkInterfaces of EC2, not {other}"),
        )),
    }
}

/// An error as EC2 sends it.
pub(crate) fn error_xml(err: &ApiError, request_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"#,
        err.code,
        escape(&err.message)
    )
}

/// The service a request's SigV4 credential scope names (`.../region/SERVICE/aws4_request`),
/// read before the signature is checked, so that even a refusal comes in that service's shape.
pub(crate) fn claimed_service<'r>(
    headers: &'r http::HeaderMap,
    uri: &'r http::Uri,
) -> Option<&'r str> {
    let credential = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .or_else(|| {
            uri.query()?
                .split('&')
                .find_map(|kv| kv.strip_prefix("X-Amz-Credential="))
        })?;
    let scope = credential.split([',', ' ']).next()?;
    // Presigned credentials are percent-encoded: `AKID%2Fdate%2Fregion%2Fservice%2F...`.
    let mut parts = scope.split(['/']).flat_map(|p| p.split("%2F"));
    parts.nth(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claimed_service_comes_from_the_credential_scope() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=AKIAX/20261201/us-east-1/ec2/aws4_request, \
             SignedHeaders=host, Signature=00"
                .parse()
                .unwrap(),
        );
        let uri: http::Uri = "/".parse().unwrap();
        assert_eq!(claimed_service(&h, &uri), Some("ec2"));
        let presigned: http::Uri =
            "/?Action=X&X-Amz-Credential=AKIAX%2F20261201%2Fus-east-1%2Fiam%2Faws4_request"
                .parse()
                .unwrap();
        assert_eq!(
            claimed_service(&http::HeaderMap::new(), &presigned),
            Some("iam")
        );
        assert_eq!(claimed_service(&http::HeaderMap::new(), &uri), None);
    }
}
