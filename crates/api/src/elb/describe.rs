//! The XML of a load balancer, as `DescribeLoadBalancers` and friends show it.

use fulcrum_model::{LoadBalancer, PolicyKind, State};

use crate::time::iso8601;
use crate::xml::Xml;
use crate::Call;

/// Writes one `LoadBalancerDescription` (the caller has opened its `member`).
pub(crate) fn load_balancer(x: &mut Xml, call: &Call<'_>, state: &State, lb: &LoadBalancer) {
    x.text("LoadBalancerName", &lb.name)
        .text("DNSName", call.ctl.dns_name(lb.name.as_str()))
        .list("ListenerDescriptions", &lb.listeners, |x, l| {
            x.open("Listener")
                .text("Protocol", l.protocol)
                .text("LoadBalancerPort", l.port)
                .text("InstanceProtocol", l.instance_protocol)
                .text("InstancePort", l.instance_port);
            if let Some(cert) = l
                .certificates
                .first()
                .and_then(|id| state.certificates.get(id))
            {
                x.text("SSLCertificateId", call.ctl.certificate_arn(cert));
            }
            x.close("Listener").strings("PolicyNames", &l.policy_names);
        });
    x.open("Policies")
        .list(
            "AppCookieStickinessPolicies",
            lb.policies.iter().filter_map(|p| match &p.kind {
                PolicyKind::AppCookieStickiness { cookie_name } => Some((&p.name, cookie_name)),
                _ => None,
            }),
            |x, (name, cookie)| {
                x.text("PolicyName", name).text("CookieName", cookie);
            },
        )
        .list(
            "LBCookieStickinessPolicies",
            lb.policies.iter().filter_map(|p| match &p.kind {
                PolicyKind::LbCookieStickiness { expiration_secs } => {
                    Some((&p.name, expiration_secs))
                }
                _ => None,
            }),
            |x, (name, expiration)| {
                x.text("PolicyName", name)
                    .opt_text("CookieExpirationPeriod", expiration.as_ref());
            },
        )
        .strings(
            "OtherPolicies",
            lb.policies
                .iter()
                .filter(|p| !p.kind.is_stickiness())
                .map(|p| &p.name),
        )
        .close("Policies");
    x.list(
        "BackendServerDescriptions",
        &lb.backend_policies,
        |x, (port, names)| {
            x.text("InstancePort", port).strings("PolicyNames", names);
        },
    );
    x.strings("AvailabilityZones", &lb.placement.availability_zones)
        .strings("Subnets", &lb.placement.subnets)
        .list("Instances", &lb.instances, |x, id| {
            x.text("InstanceId", id);
        })
        .open("HealthCheck")
        .text("Target", &lb.health_check.target)
        .text("Interval", lb.health_check.interval_secs)
        .text("Timeout", lb.health_check.timeout_secs)
        .text("UnhealthyThreshold", lb.health_check.unhealthy_threshold)
        .text("HealthyThreshold", lb.health_check.healthy_threshold)
        .close("HealthCheck")
        // No SourceSecurityGroup and no VPCId: a fulcrum node has no EC2 security group that
        // instances could allow, nor a VPC, and ELB leaves both out when there are none
        // (Terraform's aws_elb reads them only when present).
        .strings("SecurityGroups", &lb.placement.security_groups)
        .text("CreatedTime", iso8601(lb.created_at))
        .text(
            "Scheme",
            lb.placement.scheme.as_deref().unwrap_or("internet-facing"),
        );
}
