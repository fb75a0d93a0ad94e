//! The ELB Classic (`2012-06-01`) control API as an operator's tools see it: the official AWS
//! SDK for Rust against a real `fulcrum serve` child process, signed with the admin key that
//! `serve` writes to `DIR/credentials`. Every test starts its own node (own data dir, API port
//! and listener address) with health checks 20 times faster than configured, and where an
//! action should move traffic, real requests go through the node's listeners to testkit
//! backends.
//!
//! fulcrum's own inventory actions (PutInventoryInstance, ...) are not in the SDK; the fulcrum
//! CLI tests cover them. Its listener-certificate actions (AddListenerCertificates, ...) are
//! sent as raw Query requests signed by the SDK's own SigV4 signer (`aws-sigv4`).

mod common;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sdk_elasticloadbalancing as elb;
use common::{backends_on_one_port, bind_address, refused, Fulcrum, Serve};
use elb::config::interceptors::BeforeTransmitInterceptorContextMut;
use elb::config::retry::RetryConfig;
use elb::config::timeout::TimeoutConfig;
use elb::config::{BehaviorVersion, ConfigBag, Intercept, Region, RuntimeComponents};
use elb::error::{DisplayErrorContext, ProvideErrorMetadata};
use elb::types::{
    AccessLog, AdditionalAttribute, ConnectionDraining, ConnectionSettings, CrossZoneLoadBalancing,
    HealthCheck, Instance, InstanceState, Listener, LoadBalancerAttributes,
    LoadBalancerDescription, PolicyAttribute, Tag, TagKeyOnly,
};
use elb::Client;
use fulcrum_testkit::{
    certs_from_pem, client_tls_config, http_get, https_get, Backend, Conn, TestCa,
};
use tokio::time::Instant;

/// The account in fulcrum's ARNs.
const ACCOUNT: &str = "000000000000";
/// Health checks run this many times faster than configured.
const TIME_SCALE: u32 = 20;
/// Upper bound for an instance to change state, or for a listener change to reach the data plane.
const SETTLE: Duration = Duration::from_secs(20);
/// The host name the seeded certificates are for.
const HOST: &str = "www.example.test";
const ELB_NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/";

// ---------------------------------------------------------------------------------------------
// A node and its SDK client.

/// A certificate written into the store before the node starts (there is no IAM client in
/// this file).
struct SeededCert {
    name: &'static str,
    arn: String,
    /// The certificate as a TLS client receives it.
    der: Vec<u8>,
}

/// A running node with an SDK client signed with its admin key.
struct Node {
    fulcrum: Fulcrum,
    elb: Client,
    key_id: String,
    secret: String,
    /// The CA that signed the seeded certificates.
    ca: TestCa,
    certs: Vec<SeededCert>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start() -> Node {
        Node::start_with_certs(&[]).await
    }

    /// Seeds a certificate for [`HOST`] under each of `names`, then starts the node.
    async fn start_with_certs(names: &[&'static str]) -> Node {
        let certs: Vec<_> = names.iter().map(|n| (*n, HOST)).collect();
        Node::start_with_certs_for(&certs).await
    }

    /// Seeds a certificate for each (name, host name), then starts the node.
    async fn start_with_certs_for(certs: &[(&'static str, &str)]) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("fulcrum api test CA");
        let certs = certs
            .iter()
            .map(|(name, host)| seed_certificate(dir.path(), &ca, name, host))
            .collect();
        let fulcrum = Serve::new(dir.path(), bind_address())
            .time_scale(TIME_SCALE)
            .spawn_healthy()
            .await;
        let (key_id, secret) = fulcrum.credentials();
        let elb = client(fulcrum.api.expect("api"), &key_id, &secret, "us-east-1");
        Node {
            fulcrum,
            elb,
            key_id,
            secret,
            ca,
            certs,
            _dir: dir,
        }
    }

    fn api(&self) -> SocketAddr {
        self.fulcrum.api.expect("api")
    }

    /// A listener address on this node.
    fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.fulcrum.bind.expect("bind"), port)
    }

    fn seeded(&self, name: &str) -> &SeededCert {
        self.certs
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no seeded certificate {name}"))
    }

    fn cert(&self, name: &str) -> &str {
        &self.seeded(name).arn
    }

    /// Polls new TLS connections (no session resumption: a fresh client each time) to the
    /// listener on `port` until it presents the seeded certificate `name`.
    async fn wait_tls_certificate(&self, port: u16, name: &str) {
        let addr = self.addr(port);
        let want = &self.seeded(name).der;
        let deadline = Instant::now() + SETTLE;
        loop {
            let tls = client_tls_config(&self.ca.cert_pem(), &[b"http/1.1"]);
            let last = https_get(addr, HOST, tls, "/", &[]).await;
            if let Ok(reply) = &last {
                if reply.peer_cert_der.as_ref() == Some(want) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {addr} to present the certificate {name}; last: {:?}",
                last.map(|r| r.describe())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A Query call the SDK has no operation for (fulcrum's own actions, or IAM's), signed
    /// with the admin key by the SDK's SigV4 signer for `service` ("elasticloadbalancing" or
    /// "iam"); returns the raw answer.
    async fn signed_call(&self, service: &str, form: &[(&str, &str)]) -> fulcrum_testkit::Reply {
        common::signed_call(self.api(), (&self.key_id, &self.secret), service, form).await
    }

    /// One of fulcrum's listener-certificate actions on `lb`:`port` with `certs` (ARNs).
    async fn listener_certificates(
        &self,
        action: &str,
        lb: &str,
        port: u16,
        certs: &[&str],
    ) -> fulcrum_testkit::Reply {
        let port = port.to_string();
        let names: Vec<String> = (1..=certs.len())
            .map(|i| format!("Certificates.member.{i}.CertificateArn"))
            .collect();
        let mut form = vec![
            ("Action", action),
            ("Version", "2012-06-01"),
            ("LoadBalancerName", lb),
            ("LoadBalancerPort", port.as_str()),
        ];
        form.extend(names.iter().map(String::as_str).zip(certs.iter().copied()));
        self.signed_call("elasticloadbalancing", &form).await
    }

    /// `DescribeListenerCertificates`: (ARN, IsDefault) in order.
    async fn listener_certificate_list(&self, lb: &str, port: u16) -> Vec<(String, bool)> {
        let reply = self
            .listener_certificates("DescribeListenerCertificates", lb, port, &[])
            .await;
        assert_eq!(reply.status, 200, "{}", reply.describe());
        let text = reply.text();
        let list = xml_text(&text, "Certificates").unwrap_or_else(|| panic!("{text}"));
        list.split("</member>")
            .filter(|m| !m.is_empty())
            .map(|m| {
                (
                    xml_text(m, "CertificateArn")
                        .expect("CertificateArn")
                        .to_owned(),
                    xml_text(m, "IsDefault") == Some("true"),
                )
            })
            .collect()
    }

    /// The leaf certificate a fresh TLS handshake with the listener on `port` gets for `sni`
    /// (none: no SNI sent), whatever names it holds; or why the handshake failed.
    async fn leaf_for(&self, port: u16, sni: Option<&str>) -> Result<Vec<u8>, String> {
        let mut config = rustls::ClientConfig::builder_with_provider(fulcrum_testkit::provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.enable_sni = sni.is_some();
        let conn = Conn::https(
            self.addr(port),
            sni.unwrap_or("no-sni.example.test"),
            std::sync::Arc::new(config),
        )
        .await
        .map_err(|e| e.to_string())?;
        conn.peer_cert_der()
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "no peer certificate".to_owned())
    }

    /// A client with other credentials or another region, at the same endpoint.
    fn client_with(&self, key_id: &str, secret: &str, region: &str) -> Client {
        client(self.api(), key_id, secret, region)
    }

    /// `DescribeLoadBalancers` of everything.
    async fn all(&self) -> Vec<LoadBalancerDescription> {
        self.elb
            .describe_load_balancers()
            .send()
            .await
            .expect("DescribeLoadBalancers")
            .load_balancer_descriptions()
            .to_vec()
    }

    /// `DescribeLoadBalancers` of one.
    async fn describe(&self, name: &str) -> LoadBalancerDescription {
        let out = self
            .elb
            .describe_load_balancers()
            .load_balancer_names(name)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("DescribeLoadBalancers {name}: {}", DisplayErrorContext(&e))
            });
        let all = out.load_balancer_descriptions();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].clone()
    }

    /// Creates `name` with `listeners`; panics with the SDK's error otherwise.
    async fn create(&self, name: &str, listeners: Vec<Listener>) {
        self.elb
            .create_load_balancer()
            .load_balancer_name(name)
            .set_listeners(Some(listeners))
            .availability_zones("us-east-1a")
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateLoadBalancer {name}: {}", DisplayErrorContext(&e)));
    }

    /// A fast HTTP health check on `/health` of `port` (5 s / 2 s, thresholds 2, scaled).
    async fn fast_health_check(&self, lb: &str, port: u16) {
        self.elb
            .configure_health_check()
            .load_balancer_name(lb)
            .health_check(health_check(&format!("HTTP:{port}/health"), 5, 2, 2, 2))
            .send()
            .await
            .unwrap_or_else(|e| panic!("ConfigureHealthCheck: {}", DisplayErrorContext(&e)));
    }

    async fn register(&self, lb: &str, backends: &[Backend]) {
        self.elb
            .register_instances_with_load_balancer()
            .load_balancer_name(lb)
            .set_instances(Some(instances(backends)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("RegisterInstances: {}", DisplayErrorContext(&e)));
    }

    /// `DescribeInstanceHealth` of every instance of `lb`.
    async fn health(&self, lb: &str) -> Vec<InstanceState> {
        self.elb
            .describe_instance_health()
            .load_balancer_name(lb)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeInstanceHealth: {}", DisplayErrorContext(&e)))
            .instance_states()
            .to_vec()
    }

    /// Polls `DescribeInstanceHealth` until `done` accepts its answer; returns that answer.
    async fn wait_health(
        &self,
        lb: &str,
        what: &str,
        done: impl Fn(&[InstanceState]) -> bool,
    ) -> Vec<InstanceState> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let states = self.health(lb).await;
            if done(&states) {
                return states;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {SETTLE:?} waiting for {what}; DescribeInstanceHealth says {}",
                show_states(&states)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every instance of `lb` is InService.
    async fn wait_in_service(&self, lb: &str, n: usize) {
        self.wait_health(lb, &format!("{n} instances InService"), |s| {
            s.len() == n && s.iter().all(|i| i.state() == Some("InService"))
        })
        .await;
    }

    /// Polls `GET path` through the listener on `port` until it answers 200.
    async fn wait_traffic(&self, port: u16, path: &str) -> fulcrum_testkit::Reply {
        let addr = self.addr(port);
        let deadline = Instant::now() + SETTLE;
        loop {
            let last = http_get(addr, path, &[]).await;
            if let Ok(reply) = &last {
                if reply.status == 200 {
                    return last.unwrap();
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for a 200 through {addr}{path}; last: {:?}",
                last.map(|r| r.describe())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An SDK client for the API at `api`, as the brief of the operator's tools has it.
fn client(api: SocketAddr, key_id: &str, secret: &str, region: &str) -> Client {
    let creds = Credentials::new(key_id, secret, None, None, "fulcrum");
    let config = elb::Config::builder()
        .endpoint_url(format!("http://{api}"))
        .region(Region::new(region.to_owned()))
        .credentials_provider(creds)
        .behavior_version(BehaviorVersion::latest())
        // A refusal is the answer under test: no retry should hide or repeat it.
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// Writes a certificate for `host` signed by `ca` into the store of `dir` (the node is not
/// running yet) and returns its ARN.
fn seed_certificate(dir: &Path, ca: &TestCa, name: &'static str, host: &str) -> SeededCert {
    let (body, key) = ca.issue(&[host]);
    let der = certs_from_pem(&body)[0].to_vec();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let cert = fulcrum_control::prepare_certificate(
        fulcrum_control::CertificateUpload {
            name: name.to_owned(),
            path: None,
            body_pem: body,
            private_key_pem: fulcrum_model::PrivateKeyPem::new(key),
            chain_pem: None,
            tags: vec![],
        },
        now,
    )
    .expect("prepare the certificate");
    let store = fulcrum_store::Store::open(dir).expect("open the store");
    store
        .update(|s| s.add_certificate(cert.clone()))
        .expect("add the certificate");
    drop(store);
    SeededCert {
        name,
        arn: format!("arn:aws:iam::{ACCOUNT}:server-certificate/{name}"),
        der,
    }
}

fn listener(protocol: &str, port: u16, instance_protocol: &str, instance_port: u16) -> Listener {
    Listener::builder()
        .protocol(protocol)
        .load_balancer_port(i32::from(port))
        .instance_protocol(instance_protocol)
        .instance_port(i32::from(instance_port))
        .build()
        .expect("listener")
}

fn http(port: u16, instance_port: u16) -> Listener {
    listener("HTTP", port, "HTTP", instance_port)
}

fn https(port: u16, instance_port: u16, cert_arn: &str) -> Listener {
    Listener::builder()
        .protocol("HTTPS")
        .load_balancer_port(i32::from(port))
        .instance_protocol("HTTP")
        .instance_port(i32::from(instance_port))
        .ssl_certificate_id(cert_arn)
        .build()
        .expect("listener")
}

fn health_check(
    target: &str,
    interval: i32,
    timeout: i32,
    healthy: i32,
    unhealthy: i32,
) -> HealthCheck {
    HealthCheck::builder()
        .target(target)
        .interval(interval)
        .timeout(timeout)
        .healthy_threshold(healthy)
        .unhealthy_threshold(unhealthy)
        .build()
        .expect("health check")
}

/// The instance ids of backends: their literal addresses.
fn instances(backends: &[Backend]) -> Vec<Instance> {
    backends
        .iter()
        .map(|b| Instance::builder().instance_id(id(b)).build())
        .collect()
}

fn id(backend: &Backend) -> String {
    backend.addr().ip().to_string()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().expect("tag")
}

fn attribute(name: &str, value: &str) -> PolicyAttribute {
    PolicyAttribute::builder()
        .attribute_name(name)
        .attribute_value(value)
        .build()
}

fn names(lbs: &[LoadBalancerDescription]) -> Vec<String> {
    lbs.iter()
        .map(|d| d.load_balancer_name().unwrap_or_default().to_owned())
        .collect()
}

fn show_states(states: &[InstanceState]) -> String {
    states
        .iter()
        .map(|s| {
            format!(
                "{}={}/{}/{:?}",
                s.instance_id().unwrap_or("?"),
                s.state().unwrap_or("?"),
                s.reason_code().unwrap_or("?"),
                s.description().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sends a raw (unsigned unless the caller signs it) request to the API.
async fn raw_post(api: SocketAddr, body: &str) -> fulcrum_testkit::Reply {
    Conn::http(api)
        .await
        .expect("connect to the API")
        .post(
            "/",
            &[("content-type", "application/x-www-form-urlencoded")],
            body.to_owned(),
        )
        .await
        .expect("POST /")
}

/// Query-string encoding (RFC 3986 unreserved characters stay).
/// Accepts any server certificate: the tests compare the leaf itself, also when it is the
/// default certificate served for a name it does not hold.
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &fulcrum_testkit::provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &fulcrum_testkit::provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        fulcrum_testkit::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The text of the first `<tag>` element in `xml`.
fn xml_text<'x>(xml: &'x str, tag: &str) -> Option<&'x str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

// ---------------------------------------------------------------------------------------------
// CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer.

#[tokio::test]
async fn create_describe_and_delete_a_load_balancer() {
    let node = Node::start_with_certs(&["www"]).await;
    let elb = &node.elb;
    let before = SystemTime::now();
    let out = elb
        .create_load_balancer()
        .load_balancer_name("web")
        .listeners(http(18080, 8080))
        .listeners(https(18443, 8080, node.cert("www")))
        .availability_zones("us-east-1a")
        .tags(tag("team", "edge"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateLoadBalancer: {}", DisplayErrorContext(&e)));
    let bind = node.fulcrum.bind.expect("bind").to_string();
    assert_eq!(
        out.dns_name(),
        Some(bind.as_str()),
        "DNSName is the listen address"
    );

    let d = node.describe("web").await;
    assert_eq!(d.load_balancer_name(), Some("web"));
    assert_eq!(d.dns_name(), Some(bind.as_str()));
    assert_eq!(d.scheme(), Some("internet-facing"));
    // No security group for instances to allow and no VPC: ELB leaves both members out.
    assert_eq!(d.source_security_group(), None);
    assert_eq!(d.vpc_id(), None);
    assert_eq!(d.availability_zones(), ["us-east-1a"]);
    assert!(d.instances().is_empty());
    assert!(d.backend_server_descriptions().is_empty());
    let listeners: Vec<&Listener> = d
        .listener_descriptions()
        .iter()
        .map(|l| l.listener().expect("Listener"))
        .collect();
    assert_eq!(listeners.len(), 2, "{listeners:?}");
    let by_port = |p: i32| {
        *listeners
            .iter()
            .find(|l| l.load_balancer_port() == p)
            .unwrap_or_else(|| panic!("no listener {p} in {listeners:?}"))
    };
    let plain = by_port(18080);
    assert_eq!(
        (
            plain.protocol(),
            plain.instance_protocol(),
            plain.instance_port()
        ),
        ("HTTP", Some("HTTP"), 8080)
    );
    assert_eq!(plain.ssl_certificate_id(), None);
    let tls = by_port(18443);
    assert_eq!(
        (tls.protocol(), tls.instance_protocol(), tls.instance_port()),
        ("HTTPS", Some("HTTP"), 8080)
    );
    assert_eq!(
        tls.ssl_certificate_id(),
        Some(node.cert("www")),
        "the certificate is shown by its IAM ARN"
    );
    // The HTTPS listener, created without a negotiation policy, shows the one in force: ELB's
    // default predefined policy, as AWS associates it; the HTTP listener has none.
    for l in d.listener_descriptions() {
        let https = l.listener().is_some_and(|l| l.protocol() == "HTTPS");
        let want: &[&str] = if https {
            &["ELBSecurityPolicy-2016-08"]
        } else {
            &[]
        };
        assert_eq!(l.policy_names(), want, "{l:?}");
    }
    let policies = node
        .elb
        .describe_load_balancer_policies()
        .load_balancer_name(d.load_balancer_name().unwrap())
        .send()
        .await
        .expect("DescribeLoadBalancerPolicies");
    let default = &policies.policy_descriptions()[0];
    assert_eq!(default.policy_name(), Some("ELBSecurityPolicy-2016-08"));
    assert_eq!(default.policy_type_name(), Some("SSLNegotiationPolicyType"));
    assert!(
        default
            .policy_attribute_descriptions()
            .iter()
            .any(|a| a.attribute_name() == Some("Reference-Security-Policy")
                && a.attribute_value() == Some("ELBSecurityPolicy-2016-08")),
        "{default:?}"
    );
    // ELB's default health check: TCP on the first listener's instance port, 30/5/10/2.
    let hc = d.health_check().expect("HealthCheck");
    assert_eq!(
        (
            hc.target(),
            hc.interval(),
            hc.timeout(),
            hc.unhealthy_threshold(),
            hc.healthy_threshold()
        ),
        ("TCP:8080", 30, 5, 2, 10)
    );
    let policies = d.policies().expect("Policies");
    assert!(policies.app_cookie_stickiness_policies().is_empty());
    assert!(policies.lb_cookie_stickiness_policies().is_empty());
    assert_eq!(policies.other_policies(), ["ELBSecurityPolicy-2016-08"]);
    let created = d.created_time().expect("CreatedTime");
    let created =
        UNIX_EPOCH + Duration::from_secs(u64::try_from(created.secs()).expect("after 1970"));
    assert!(
        created + Duration::from_secs(2) >= before
            && created <= SystemTime::now() + Duration::from_secs(2),
        "CreatedTime {created:?} is not now"
    );
    let tags = elb
        .describe_tags()
        .load_balancer_names("web")
        .send()
        .await
        .expect("DescribeTags");
    assert_eq!(tags.tag_descriptions()[0].tags(), [tag("team", "edge")]);

    // The listener is live.
    let reply = node.wait_traffic_status(18080, 503).await;
    assert_eq!(reply.status, 503, "no instance yet: {}", reply.describe());

    // Re-creating it identically is accepted (ELB's idempotent create), and changes nothing.
    elb.create_load_balancer()
        .load_balancer_name("web")
        .listeners(https(18443, 8080, node.cert("www")))
        .listeners(http(18080, 8080))
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap_or_else(|e| panic!("identical re-create: {}", DisplayErrorContext(&e)));
    assert_eq!(node.describe("web").await, d);

    // The same name with other listeners is a duplicate.
    let (err, status) = refused(
        "CreateLoadBalancer web with other listeners",
        elb.create_load_balancer()
            .load_balancer_name("web")
            .listeners(http(18081, 8080))
            .availability_zones("us-east-1a")
            .send()
            .await,
        "DuplicateLoadBalancerName",
    );
    assert!(err.is_duplicate_access_point_name_exception(), "{err:?}");
    assert_eq!(status, 400);

    // Names ELB refuses.
    for bad in [
        "-web",
        "web-",
        "we_b",
        "a-name-that-is-longer-than-32-chars",
    ] {
        let (_, status) = refused(
            &format!("CreateLoadBalancer {bad:?}"),
            elb.create_load_balancer()
                .load_balancer_name(bad)
                .listeners(http(18090, 8080))
                .availability_zones("us-east-1a")
                .send()
                .await,
            "ValidationError",
        );
        assert_eq!(status, 400);
    }

    // An HTTPS listener naming a certificate that does not exist.
    let (err, _) = refused(
        "CreateLoadBalancer with an unknown certificate",
        elb.create_load_balancer()
            .load_balancer_name("nocert")
            .listeners(https(
                18091,
                8080,
                &format!("arn:aws:iam::{ACCOUNT}:server-certificate/nope"),
            ))
            .availability_zones("us-east-1a")
            .send()
            .await,
        "CertificateNotFound",
    );
    assert!(err.is_certificate_not_found_exception(), "{err:?}");
    assert_eq!(
        names(&node.all().await),
        ["web"],
        "nothing else was created"
    );

    // Describe by an unknown name: AccessPointNotFoundException (code LoadBalancerNotFound).
    let (err, status) = refused(
        "DescribeLoadBalancers nope",
        elb.describe_load_balancers()
            .load_balancer_names("nope")
            .send()
            .await,
        "LoadBalancerNotFound",
    );
    assert!(err.is_access_point_not_found_exception(), "{err:?}");
    assert_eq!(status, 400);

    // Delete, and delete again (ELB's delete is idempotent); the listener closes.
    elb.delete_load_balancer()
        .load_balancer_name("web")
        .send()
        .await
        .expect("DeleteLoadBalancer");
    elb.delete_load_balancer()
        .load_balancer_name("web")
        .send()
        .await
        .expect("DeleteLoadBalancer of a deleted load balancer");
    assert!(node.all().await.is_empty());
    refused(
        "DescribeLoadBalancers web after delete",
        elb.describe_load_balancers()
            .load_balancer_names("web")
            .send()
            .await,
        "LoadBalancerNotFound",
    );
    let addr = node.addr(18080);
    fulcrum_testkit::eventually(
        "the deleted load balancer's listener to close",
        SETTLE,
        || async move { http_get(addr, "/", &[]).await.is_err() },
    )
    .await;
}

impl Node {
    /// Polls `GET /` through the listener on `port` until it answers `status`.
    async fn wait_traffic_status(&self, port: u16, status: u16) -> fulcrum_testkit::Reply {
        let addr = self.addr(port);
        let deadline = Instant::now() + SETTLE;
        loop {
            let last = http_get(addr, "/", &[]).await;
            if let Ok(reply) = &last {
                if reply.status == status {
                    return last.unwrap();
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {status} through {addr}; last: {:?}",
                last.map(|r| r.describe())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_port_taken_by_another_load_balancer_is_refused_and_nothing_is_half_created() {
    let node = Node::start().await;
    let elb = &node.elb;
    node.create("first", vec![http(18080, 8080)]).await;
    let before = node.all().await;

    let (err, status) = refused(
        "CreateLoadBalancer second on first's port",
        elb.create_load_balancer()
            .load_balancer_name("second")
            .listeners(http(18081, 8080))
            .listeners(http(18080, 8080))
            .availability_zones("us-east-1a")
            .tags(tag("k", "v"))
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    assert!(err.is_invalid_configuration_request_exception(), "{err:?}");
    assert_eq!(
        status, 409,
        "AWS answers InvalidConfigurationRequest with 409"
    );
    assert_eq!(node.all().await, before, "nothing of `second` exists");
    refused(
        "DescribeLoadBalancers second",
        elb.describe_load_balancers()
            .load_balancer_names("second")
            .send()
            .await,
        "LoadBalancerNotFound",
    );
    // Its good listener was not opened either.
    assert!(
        http_get(node.addr(18081), "/", &[]).await.is_err(),
        "port 18081 must not be listening"
    );

    // The same through CreateLoadBalancerListeners on another load balancer.
    node.create("third", vec![http(18082, 8080)]).await;
    let before = node.all().await;
    let (_, status) = refused(
        "CreateLoadBalancerListeners third on first's port",
        elb.create_load_balancer_listeners()
            .load_balancer_name("third")
            .listeners(http(18083, 8080))
            .listeners(http(18080, 8080))
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    assert_eq!(status, 409);
    assert_eq!(node.all().await, before);
}

#[tokio::test]
async fn a_refused_listener_batch_leaves_the_state_unchanged() {
    let node = Node::start_with_certs(&["www"]).await;
    let elb = &node.elb;
    node.create("web", vec![http(18080, 8080)]).await;
    let before = node.all().await;

    // One good listener, then one that conflicts with the existing one (same port, other
    // instance port): the whole batch is refused.
    let (err, _) = refused(
        "CreateLoadBalancerListeners with a duplicate",
        elb.create_load_balancer_listeners()
            .load_balancer_name("web")
            .listeners(http(18081, 8080))
            .listeners(http(18080, 9090))
            .send()
            .await,
        "DuplicateListener",
    );
    assert!(err.is_duplicate_listener_exception(), "{err:?}");
    assert_eq!(node.all().await, before, "18081 must not have been added");

    // One good listener, then an HTTPS one whose certificate does not exist.
    refused(
        "CreateLoadBalancerListeners with an unknown certificate",
        elb.create_load_balancer_listeners()
            .load_balancer_name("web")
            .listeners(http(18082, 8080))
            .listeners(https(
                18443,
                8080,
                "arn:aws:iam::000000000000:server-certificate/nope",
            ))
            .send()
            .await,
        "CertificateNotFound",
    );
    assert_eq!(node.all().await, before);

    // One good listener, then one with an unknown protocol.
    refused(
        "CreateLoadBalancerListeners with protocol FTP",
        elb.create_load_balancer_listeners()
            .load_balancer_name("web")
            .listeners(http(18084, 8080))
            .listeners(listener("FTP", 18085, "TCP", 21))
            .send()
            .await,
        "ValidationError",
    );
    assert_eq!(node.all().await, before);
    assert!(
        http_get(node.addr(18081), "/", &[]).await.is_err()
            && http_get(node.addr(18082), "/", &[]).await.is_err()
            && http_get(node.addr(18084), "/", &[]).await.is_err(),
        "no listener of a refused batch may be open"
    );
}

#[tokio::test]
async fn describe_load_balancers_pages_with_page_size_and_marker() {
    let node = Node::start().await;
    let elb = &node.elb;
    let all: Vec<String> = ["alpha", "bravo", "charlie", "delta", "echo"]
        .map(String::from)
        .to_vec();
    for (i, name) in all.iter().enumerate() {
        node.create(name, vec![http(18080 + i as u16, 8080)]).await;
    }

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = elb
            .describe_load_balancers()
            .page_size(2)
            .set_marker(marker.clone())
            .send()
            .await
            .expect("DescribeLoadBalancers page");
        let here = names(page.load_balancer_descriptions());
        pages.push(here.len());
        seen.extend(here);
        match page.next_marker() {
            Some(m) => {
                assert!(pages.len() < 10, "the pages do not end: {seen:?}");
                marker = Some(m.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(pages, [2, 2, 1], "pages of 2 over 5 load balancers");
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a load balancer came twice: {seen:?}"
    );
    assert_eq!(
        unique,
        all.iter().collect(),
        "every load balancer exactly once"
    );

    // The SDK's own paginator agrees.
    let items: Vec<_> = elb
        .describe_load_balancers()
        .page_size(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginate");
    assert_eq!(names(&items), seen);

    // An exact last page has no NextMarker.
    let first4 = elb
        .describe_load_balancers()
        .page_size(4)
        .send()
        .await
        .expect("page of 4");
    let rest = elb
        .describe_load_balancers()
        .page_size(4)
        .marker(first4.next_marker().expect("more after 4"))
        .send()
        .await
        .expect("rest");
    assert_eq!(rest.load_balancer_descriptions().len(), 1);
    assert_eq!(rest.next_marker(), None);

    for bad in [0, 401] {
        refused(
            &format!("PageSize {bad}"),
            elb.describe_load_balancers().page_size(bad).send().await,
            "ValidationError",
        );
    }
    // Several names at once; one unknown among them fails the call.
    let two = elb
        .describe_load_balancers()
        .load_balancer_names("echo")
        .load_balancer_names("alpha")
        .send()
        .await
        .expect("two by name");
    let mut got = names(two.load_balancer_descriptions());
    got.sort();
    assert_eq!(got, ["alpha", "echo"]);
    refused(
        "DescribeLoadBalancers alpha + nope",
        elb.describe_load_balancers()
            .load_balancer_names("alpha")
            .load_balancer_names("nope")
            .send()
            .await,
        "LoadBalancerNotFound",
    );
}

// ---------------------------------------------------------------------------------------------
// Listeners and their certificates.

#[tokio::test]
async fn listeners_are_added_removed_and_change_certificates() {
    let node = Node::start_with_certs(&["www", "www-next"]).await;
    let elb = &node.elb;
    node.create("web", vec![http(18080, 8080)]).await;

    elb.create_load_balancer_listeners()
        .load_balancer_name("web")
        .listeners(https(18443, 8080, node.cert("www")))
        .listeners(listener("TCP", 18022, "TCP", 22))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateLoadBalancerListeners: {}", DisplayErrorContext(&e)));
    // An identical listener again is a no-op.
    elb.create_load_balancer_listeners()
        .load_balancer_name("web")
        .listeners(listener("TCP", 18022, "TCP", 22))
        .send()
        .await
        .expect("identical listener again");
    let ports = |d: &LoadBalancerDescription| -> Vec<i32> {
        let mut p: Vec<i32> = d
            .listener_descriptions()
            .iter()
            .map(|l| l.listener().expect("listener").load_balancer_port())
            .collect();
        p.sort();
        p
    };
    assert_eq!(ports(&node.describe("web").await), [18022, 18080, 18443]);

    let (err, status) = refused(
        "a different listener on 18022",
        elb.create_load_balancer_listeners()
            .load_balancer_name("web")
            .listeners(listener("TCP", 18022, "TCP", 2222))
            .send()
            .await,
        "DuplicateListener",
    );
    assert!(err.is_duplicate_listener_exception());
    assert_eq!(status, 400);
    let (err, _) = refused(
        "CreateLoadBalancerListeners on an unknown load balancer",
        elb.create_load_balancer_listeners()
            .load_balancer_name("nope")
            .listeners(http(18081, 8080))
            .send()
            .await,
        "LoadBalancerNotFound",
    );
    assert!(err.is_access_point_not_found_exception());

    // The TLS listener answers with the certificate it was created with.
    let addr = node.addr(18443);
    node.wait_tls_certificate(18443, "www").await;

    // Rotate it.
    elb.set_load_balancer_listener_ssl_certificate()
        .load_balancer_name("web")
        .load_balancer_port(18443)
        .ssl_certificate_id(node.cert("www-next"))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "SetLoadBalancerListenerSSLCertificate: {}",
                DisplayErrorContext(&e)
            )
        });
    let d = node.describe("web").await;
    let shown = d
        .listener_descriptions()
        .iter()
        .filter_map(|l| l.listener())
        .find(|l| l.load_balancer_port() == 18443)
        .and_then(|l| l.ssl_certificate_id())
        .map(str::to_owned);
    assert_eq!(shown.as_deref(), Some(node.cert("www-next")));
    node.wait_tls_certificate(18443, "www-next").await;

    let (err, _) = refused(
        "SetLoadBalancerListenerSSLCertificate on a port without a listener",
        elb.set_load_balancer_listener_ssl_certificate()
            .load_balancer_name("web")
            .load_balancer_port(18444)
            .ssl_certificate_id(node.cert("www"))
            .send()
            .await,
        "ListenerNotFound",
    );
    assert!(err.is_listener_not_found_exception());
    let (err, _) = refused(
        "SetLoadBalancerListenerSSLCertificate with an unknown certificate",
        elb.set_load_balancer_listener_ssl_certificate()
            .load_balancer_name("web")
            .load_balancer_port(18443)
            .ssl_certificate_id("arn:aws:iam::000000000000:server-certificate/nope")
            .send()
            .await,
        "CertificateNotFound",
    );
    assert!(err.is_certificate_not_found_exception());
    refused(
        "SetLoadBalancerListenerSSLCertificate on an HTTP listener",
        elb.set_load_balancer_listener_ssl_certificate()
            .load_balancer_name("web")
            .load_balancer_port(18080)
            .ssl_certificate_id(node.cert("www"))
            .send()
            .await,
        "InvalidConfigurationRequest",
    );

    // Delete two listeners (one port without a listener is ignored, as in ELB).
    elb.delete_load_balancer_listeners()
        .load_balancer_name("web")
        .load_balancer_ports(18443)
        .load_balancer_ports(18022)
        .load_balancer_ports(18999)
        .send()
        .await
        .expect("DeleteLoadBalancerListeners");
    assert_eq!(ports(&node.describe("web").await), [18080]);
    fulcrum_testkit::eventually("the deleted TLS listener to close", SETTLE, || async move {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    refused(
        "DeleteLoadBalancerListeners on an unknown load balancer",
        elb.delete_load_balancer_listeners()
            .load_balancer_name("nope")
            .load_balancer_ports(18080)
            .send()
            .await,
        "LoadBalancerNotFound",
    );
}

/// fulcrum's AddListenerCertificates / RemoveListenerCertificates / DescribeListenerCertificates:
/// three certificates on one HTTPS listener, each served for its SNI name, the default for
/// unknown names and for none, one removed while clients keep connecting, ELB's errors, and
/// certificates in a list that cannot be deleted.
#[tokio::test]
async fn a_listener_serves_several_certificates_by_sni() {
    let node = Node::start_with_certs_for(&[
        ("www", HOST),
        ("api", "api.example.test"),
        ("img", "*.img.example.test"),
        ("spare", "spare.example.test"),
    ])
    .await;
    node.create(
        "multi",
        vec![https(18443, 8080, node.cert("www")), http(18080, 8080)],
    )
    .await;
    let ders: std::collections::HashMap<&str, Vec<u8>> = ["www", "api", "img"]
        .into_iter()
        .map(|n| (n, node.seeded(n).der.clone()))
        .collect();
    let der = |name: &str| ders[name].clone();
    node.wait_tls_certificate(18443, "www").await;

    let added = node
        .listener_certificates(
            "AddListenerCertificates",
            "multi",
            18443,
            &[node.cert("api"), node.cert("img")],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.describe());
    let text = added.text();
    assert!(text.contains(ELB_NAMESPACE), "{text}");
    assert!(
        text.contains(&format!(
            "<member><CertificateArn>{}</CertificateArn><IsDefault>false</IsDefault></member>",
            node.cert("img")
        )),
        "{text}"
    );
    // Adding one already there (the default too) is idempotent.
    let again = node
        .listener_certificates(
            "AddListenerCertificates",
            "multi",
            18443,
            &[node.cert("api"), node.cert("www")],
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.describe());
    let expected = vec![
        (node.cert("www").to_owned(), true),
        (node.cert("api").to_owned(), false),
        (node.cert("img").to_owned(), false),
    ];
    assert_eq!(
        node.listener_certificate_list("multi", 18443).await,
        expected
    );

    // DescribeLoadBalancers as the SDK reads it: SSLCertificateId is still the default.
    let d = node.describe("multi").await;
    let shown = d
        .listener_descriptions()
        .iter()
        .filter_map(|l| l.listener())
        .find(|l| l.load_balancer_port() == 18443)
        .and_then(|l| l.ssl_certificate_id())
        .map(str::to_owned);
    assert_eq!(shown.as_deref(), Some(node.cert("www")));

    // Each name gets its certificate; an unknown name and no SNI get the default.
    let cases = [
        (Some(HOST), "www"),
        (Some("api.example.test"), "api"),
        (Some("a.img.example.test"), "img"),
        (Some("other.example.test"), "www"),
        (Some("a.b.img.example.test"), "www"),
        (None, "www"),
    ];
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut wrong = Vec::new();
        for (sni, want) in cases {
            let got = node.leaf_for(18443, sni).await;
            if got.as_ref() != Ok(&der(want)) {
                wrong.push(format!(
                    "{sni:?} wants {want}, got {:?}",
                    got.map(|_| "another")
                ));
            }
        }
        if wrong.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{wrong:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The errors, each leaving the list as it was.
    let spare = node.cert("spare").to_owned();
    for (what, action, lb, port, certs, code) in [
        (
            "an unknown load balancer",
            "AddListenerCertificates",
            "nope",
            18443,
            vec![spare.as_str()],
            "LoadBalancerNotFound",
        ),
        (
            "no listener on the port",
            "AddListenerCertificates",
            "multi",
            18444,
            vec![spare.as_str()],
            "ListenerNotFound",
        ),
        (
            "an HTTP listener",
            "AddListenerCertificates",
            "multi",
            18080,
            vec![spare.as_str()],
            "InvalidConfigurationRequest",
        ),
        (
            "an unknown certificate",
            "AddListenerCertificates",
            "multi",
            18443,
            vec![
                spare.as_str(),
                "arn:aws:iam::000000000000:server-certificate/nope",
            ],
            "CertificateNotFound",
        ),
        (
            "no certificates",
            "AddListenerCertificates",
            "multi",
            18443,
            vec![],
            "ValidationError",
        ),
        (
            "the default certificate",
            "RemoveListenerCertificates",
            "multi",
            18443,
            vec![node.cert("api"), node.cert("www")],
            "InvalidConfigurationRequest",
        ),
        (
            "an unknown certificate",
            "RemoveListenerCertificates",
            "multi",
            18443,
            vec!["arn:aws:iam::000000000000:server-certificate/nope"],
            "CertificateNotFound",
        ),
        (
            "an unknown load balancer",
            "RemoveListenerCertificates",
            "nope",
            18443,
            vec![node.cert("api")],
            "LoadBalancerNotFound",
        ),
        (
            "no listener on the port",
            "DescribeListenerCertificates",
            "multi",
            18444,
            vec![],
            "ListenerNotFound",
        ),
        (
            "an HTTP listener",
            "DescribeListenerCertificates",
            "multi",
            18080,
            vec![],
            "InvalidConfigurationRequest",
        ),
    ] {
        let reply = node.listener_certificates(action, lb, port, &certs).await;
        let text = reply.text();
        assert!(
            (400..500).contains(&reply.status),
            "{action} with {what}: {}",
            reply.describe()
        );
        assert_eq!(
            xml_text(&text, "Code"),
            Some(code),
            "{action} with {what}: {text}"
        );
        assert!(
            text.contains("<ErrorResponse"),
            "{action} with {what}: {text}"
        );
        if what == "the default certificate" {
            assert!(
                text.contains("SetLoadBalancerListenerSSLCertificate"),
                "{text}"
            );
        }
    }
    assert_eq!(
        node.listener_certificate_list("multi", 18443).await,
        expected
    );

    // No certificate in the list can be deleted, wherever it stands.
    for name in ["www", "api", "img"] {
        let reply = node
            .signed_call(
                "iam",
                &[
                    ("Action", "DeleteServerCertificate"),
                    ("Version", "2010-05-08"),
                    ("ServerCertificateName", name),
                ],
            )
            .await;
        let text = reply.text();
        assert_eq!(reply.status, 409, "DeleteServerCertificate {name}: {text}");
        assert_eq!(xml_text(&text, "Code"), Some("DeleteConflict"), "{text}");
    }

    // Remove one while clients keep connecting for its name: no handshake fails, and once one
    // gets the default, every later one does.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let node = std::sync::Arc::new(node);
    let prober = {
        let (node, stop) = (std::sync::Arc::clone(&node), std::sync::Arc::clone(&stop));
        let (api, www) = (der("api"), der("www"));
        tokio::spawn(async move {
            let (mut api_seen, mut www_seen, mut after) = (0, 0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || www_seen == 0 {
                let leaf = node
                    .leaf_for(18443, Some("api.example.test"))
                    .await
                    .expect("no handshake fails while the list changes");
                if leaf == www {
                    www_seen += 1;
                } else {
                    assert_eq!(leaf, api, "only api or the default");
                    assert_eq!(www_seen, 0, "api served again after the default was");
                    api_seen += 1;
                }
                if www_seen > 0 {
                    after += 1;
                }
            }
            (api_seen, www_seen, after)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let removed = node
        .listener_certificates(
            "RemoveListenerCertificates",
            "multi",
            18443,
            &[node.cert("api")],
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.describe());
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (api_seen, www_seen, after) = tokio::time::timeout(SETTLE, prober)
        .await
        .expect("the prober finishes")
        .expect("the prober's handshakes");
    assert!(
        api_seen > 0 && www_seen > 0 && after > 0,
        "{api_seen} {www_seen} {after}"
    );
    assert_eq!(
        node.listener_certificate_list("multi", 18443).await,
        [expected[0].clone(), expected[2].clone()]
    );
    // Removing it again is a no-op; once out of every list it can be deleted.
    let again = node
        .listener_certificates(
            "RemoveListenerCertificates",
            "multi",
            18443,
            &[node.cert("api")],
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.describe());
    let reply = node
        .signed_call(
            "iam",
            &[
                ("Action", "DeleteServerCertificate"),
                ("Version", "2010-05-08"),
                ("ServerCertificateName", "api"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(
        node.leaf_for(18443, Some("a.img.example.test")).await,
        Ok(der("img"))
    );
}

// ---------------------------------------------------------------------------------------------
// Health checks, instances and traffic.

#[tokio::test]
async fn health_checks_instances_and_real_traffic() {
    let node = Node::start().await;
    let elb = &node.elb;
    let (backends, port) = backends_on_one_port(2).await;
    node.create("web", vec![http(18080, port)]).await;

    // Validation of the health check.
    for (what, check) in [
        (
            "timeout >= interval",
            health_check(&format!("HTTP:{port}/health"), 5, 5, 2, 2),
        ),
        (
            "healthy threshold 11",
            health_check(&format!("HTTP:{port}/health"), 5, 2, 11, 2),
        ),
        (
            "unhealthy threshold 1",
            health_check(&format!("HTTP:{port}/health"), 5, 2, 2, 1),
        ),
        (
            "interval 4",
            health_check(&format!("HTTP:{port}/health"), 4, 2, 2, 2),
        ),
        ("target FTP:21", health_check("FTP:21", 5, 2, 2, 2)),
        (
            "target without a port",
            health_check("HTTP:/health", 5, 2, 2, 2),
        ),
    ] {
        let (_, status) = refused(
            &format!("ConfigureHealthCheck with {what}"),
            elb.configure_health_check()
                .load_balancer_name("web")
                .health_check(check)
                .send()
                .await,
            "ValidationError",
        );
        assert_eq!(status, 400);
    }
    refused(
        "ConfigureHealthCheck of an unknown load balancer",
        elb.configure_health_check()
            .load_balancer_name("nope")
            .health_check(health_check("TCP:80", 5, 2, 2, 2))
            .send()
            .await,
        "LoadBalancerNotFound",
    );

    // A slow check (30 s, thresholds 3: 1.5 s a check here), so that "registration in
    // progress" lasts long enough to be seen.
    let out = elb
        .configure_health_check()
        .load_balancer_name("web")
        .health_check(health_check(&format!("HTTP:{port}/health"), 30, 5, 3, 2))
        .send()
        .await
        .expect("ConfigureHealthCheck");
    let hc = out.health_check().expect("the check, echoed");
    assert_eq!(hc.target(), format!("HTTP:{port}/health"));
    assert_eq!((hc.interval(), hc.timeout()), (30, 5));
    assert_eq!((hc.healthy_threshold(), hc.unhealthy_threshold()), (3, 2));
    assert_eq!(
        node.describe("web").await.health_check().expect("hc"),
        hc,
        "DescribeLoadBalancers shows the check"
    );

    let out = elb
        .register_instances_with_load_balancer()
        .load_balancer_name("web")
        .set_instances(Some(instances(&backends)))
        .send()
        .await
        .expect("RegisterInstancesWithLoadBalancer");
    let registered: BTreeSet<String> = out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    assert_eq!(registered, backends.iter().map(id).collect());
    // Registering again is a no-op.
    node.register("web", &backends[..1]).await;
    assert_eq!(node.describe("web").await.instances().len(), 2);

    // Out of service while the first checks run, with ELB's reason.
    let states = node
        .wait_health(
            "web",
            "OutOfService / ELB / registration in progress",
            |s| {
                s.len() == 2
                    && s.iter().all(|i| {
                        i.state() == Some("OutOfService")
                            && i.reason_code() == Some("ELB")
                            && i.description()
                                .is_some_and(|d| d.contains("registration is still in progress"))
                    })
            },
        )
        .await;
    assert_eq!(
        states
            .iter()
            .filter_map(|s| s.instance_id().map(str::to_owned))
            .collect::<BTreeSet<_>>(),
        backends.iter().map(id).collect()
    );
    let states = node
        .wait_health("web", "both InService", |s| {
            s.len() == 2 && s.iter().all(|i| i.state() == Some("InService"))
        })
        .await;
    for s in &states {
        assert_eq!(s.reason_code(), Some("N/A"), "{}", show_states(&states));
    }

    // Real traffic, to both.
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let reply = http_get(node.addr(18080), "/", &[])
            .await
            .expect("GET through the listener");
        assert_eq!(reply.status, 200, "{}", reply.describe());
        seen.insert(reply.instance());
    }
    assert_eq!(seen, ["i-0".to_owned(), "i-1".to_owned()].into());

    // DescribeInstanceHealth of one instance, and of one that is not registered.
    let one = elb
        .describe_instance_health()
        .load_balancer_name("web")
        .instances(Instance::builder().instance_id(id(&backends[1])).build())
        .send()
        .await
        .expect("DescribeInstanceHealth of one");
    assert_eq!(one.instance_states().len(), 1);
    assert_eq!(
        one.instance_states()[0].instance_id(),
        Some(id(&backends[1]).as_str())
    );
    // An instance that is not registered: ELB returns its state (out of service) rather than
    // refusing (this test asserted fulcrum's old InvalidInstance before); one that does not
    // exist at all is invalid.
    let unregistered = elb
        .describe_instance_health()
        .load_balancer_name("web")
        .instances(Instance::builder().instance_id("10.9.9.9").build())
        .send()
        .await
        .expect("DescribeInstanceHealth of an unregistered instance");
    let state = unregistered.instance_states();
    assert_eq!(state.len(), 1, "{state:?}");
    assert_eq!(
        (
            state[0].instance_id(),
            state[0].state(),
            state[0].reason_code(),
            state[0].description()
        ),
        (
            Some("10.9.9.9"),
            Some("OutOfService"),
            Some("ELB"),
            Some("Instance is not currently registered with the LoadBalancer.")
        )
    );
    let (err, _) = refused(
        "DescribeInstanceHealth of an instance that does not exist",
        elb.describe_instance_health()
            .load_balancer_name("web")
            .instances(
                Instance::builder()
                    .instance_id("i-0123456789abcdef0")
                    .build(),
            )
            .send()
            .await,
        "InvalidInstance",
    );
    assert!(err.is_invalid_end_point_exception(), "{err:?}");
    refused(
        "DescribeInstanceHealth of an unknown load balancer",
        elb.describe_instance_health()
            .load_balancer_name("nope")
            .send()
            .await,
        "LoadBalancerNotFound",
    );

    // An instance that fails its checks goes out of service with the reason "Instance", and
    // traffic goes to the other one only.
    backends[0].set_healthy(false);
    let failing = id(&backends[0]);
    let states = node
        .wait_health("web", "i-0 OutOfService / Instance", |s| {
            s.iter().any(|i| {
                i.instance_id() == Some(failing.as_str())
                    && i.state() == Some("OutOfService")
                    && i.reason_code() == Some("Instance")
            })
        })
        .await;
    let other = states
        .iter()
        .find(|s| s.instance_id() != Some(failing.as_str()))
        .expect("i-1");
    assert_eq!(other.state(), Some("InService"), "{}", show_states(&states));
    for _ in 0..10 {
        let reply = http_get(node.addr(18080), "/", &[])
            .await
            .expect("GET through the listener");
        assert_eq!(reply.status, 200, "{}", reply.describe());
        assert_eq!(reply.instance(), "i-1");
    }
    backends[0].set_healthy(true);
    node.wait_in_service("web", 2).await;

    // Deregister one; deregistering it again is InvalidInstance.
    let out = elb
        .deregister_instances_from_load_balancer()
        .load_balancer_name("web")
        .instances(Instance::builder().instance_id(id(&backends[0])).build())
        .send()
        .await
        .expect("DeregisterInstancesFromLoadBalancer");
    let left: Vec<&str> = out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id())
        .collect();
    assert_eq!(left, [id(&backends[1]).as_str()]);
    let (_, status) = refused(
        "DeregisterInstancesFromLoadBalancer of an instance not registered",
        elb.deregister_instances_from_load_balancer()
            .load_balancer_name("web")
            .instances(Instance::builder().instance_id(id(&backends[0])).build())
            .send()
            .await,
        "InvalidInstance",
    );
    assert_eq!(status, 400);
    assert_eq!(node.health("web").await.len(), 1);
    fulcrum_testkit::eventually("traffic to i-1 only", SETTLE, || async {
        let mut only_i1 = true;
        for _ in 0..6 {
            match http_get(node.addr(18080), "/", &[]).await {
                Ok(r) if r.status == 200 => only_i1 &= r.instance() == "i-1",
                _ => only_i1 = false,
            }
        }
        only_i1
    })
    .await;

    // Instance ids that are neither addresses nor in the inventory.
    let (_, status) = refused(
        "RegisterInstances with an id that is not in the inventory",
        elb.register_instances_with_load_balancer()
            .load_balancer_name("web")
            .instances(
                Instance::builder()
                    .instance_id("i-0123456789abcdef0")
                    .build(),
            )
            .send()
            .await,
        "InvalidInstance",
    );
    assert_eq!(status, 400);
    refused(
        "RegisterInstances with a malformed id",
        elb.register_instances_with_load_balancer()
            .load_balancer_name("web")
            .instances(Instance::builder().instance_id("not an id!").build())
            .send()
            .await,
        "InvalidInstance",
    );
    assert_eq!(
        node.describe("web").await.instances().len(),
        1,
        "nothing was added"
    );
}

// ---------------------------------------------------------------------------------------------
// Policies.

#[tokio::test]
async fn stickiness_policies_pin_clients_to_an_instance() {
    let node = Node::start().await;
    let elb = &node.elb;
    let (backends, port) = backends_on_one_port(2).await;
    node.create("web", vec![http(18080, port)]).await;
    node.fast_health_check("web", port).await;
    node.register("web", &backends).await;
    node.wait_in_service("web", 2).await;

    elb.create_lb_cookie_stickiness_policy()
        .load_balancer_name("web")
        .policy_name("sticky-lb")
        .cookie_expiration_period(120)
        .send()
        .await
        .expect("CreateLBCookieStickinessPolicy");
    elb.create_app_cookie_stickiness_policy()
        .load_balancer_name("web")
        .policy_name("sticky-app")
        .cookie_name("SESSION")
        .send()
        .await
        .expect("CreateAppCookieStickinessPolicy");
    let (err, _) = refused(
        "CreateLBCookieStickinessPolicy with a taken name",
        elb.create_lb_cookie_stickiness_policy()
            .load_balancer_name("web")
            .policy_name("sticky-app")
            .send()
            .await,
        "DuplicatePolicyName",
    );
    assert!(err.is_duplicate_policy_name_exception());
    refused(
        "CreateAppCookieStickinessPolicy on an unknown load balancer",
        elb.create_app_cookie_stickiness_policy()
            .load_balancer_name("nope")
            .policy_name("p")
            .cookie_name("SESSION")
            .send()
            .await,
        "LoadBalancerNotFound",
    );

    elb.set_load_balancer_policies_of_listener()
        .load_balancer_name("web")
        .load_balancer_port(18080)
        .policy_names("sticky-lb")
        .send()
        .await
        .expect("SetLoadBalancerPoliciesOfListener");
    let d = node.describe("web").await;
    let policies = d.policies().expect("Policies");
    let lb_cookie = policies.lb_cookie_stickiness_policies();
    assert_eq!(lb_cookie.len(), 1, "{policies:?}");
    assert_eq!(lb_cookie[0].policy_name(), Some("sticky-lb"));
    assert_eq!(lb_cookie[0].cookie_expiration_period(), Some(120));
    let app_cookie = policies.app_cookie_stickiness_policies();
    assert_eq!(app_cookie.len(), 1, "{policies:?}");
    assert_eq!(
        (app_cookie[0].policy_name(), app_cookie[0].cookie_name()),
        (Some("sticky-app"), Some("SESSION"))
    );
    assert_eq!(d.listener_descriptions()[0].policy_names(), ["sticky-lb"]);

    // The balancer's cookie: set on the first answer, and it pins the client.
    let addr = node.addr(18080);
    let first = {
        let deadline = Instant::now() + SETTLE;
        loop {
            let reply = http_get(addr, "/", &[]).await.expect("GET");
            if !reply.response_headers("set-cookie").is_empty() {
                break reply;
            }
            assert!(
                Instant::now() < deadline,
                "no Set-Cookie after the policy was applied: {:?}",
                reply.headers
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let set_cookie = first.response_headers("set-cookie").join("; ");
    assert!(set_cookie.starts_with("AWSELB="), "{set_cookie}");
    assert!(set_cookie.contains("Max-Age=120"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    let pinned = first.instance();
    for _ in 0..10 {
        let reply = http_get(addr, "/", &[("cookie", &cookie)])
            .await
            .expect("GET with the cookie");
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.instance(),
            pinned,
            "the cookie {cookie} pins the instance"
        );
    }

    // Application-cookie stickiness: the balancer's cookie follows the application's.
    elb.set_load_balancer_policies_of_listener()
        .load_balancer_name("web")
        .load_balancer_port(18080)
        .policy_names("sticky-app")
        .send()
        .await
        .expect("SetLoadBalancerPoliciesOfListener sticky-app");
    let deadline = Instant::now() + SETTLE;
    let (app_reply, awselb) = loop {
        let reply = http_get(addr, "/set-cookie/SESSION/abc", &[])
            .await
            .expect("GET");
        let cookies = reply.response_headers("set-cookie");
        if let Some(elb_cookie) = cookies.iter().find(|c| c.starts_with("AWSELB=")) {
            let value = elb_cookie.split(';').next().expect("name=value").to_owned();
            break (reply, value);
        }
        assert!(
            Instant::now() < deadline,
            "no AWSELB cookie with SESSION: {cookies:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let header = format!("SESSION=abc; {awselb}");
    for _ in 0..10 {
        let reply = http_get(addr, "/", &[("cookie", &header)])
            .await
            .expect("GET");
        assert_eq!(reply.instance(), app_reply.instance());
    }

    // Errors of SetLoadBalancerPoliciesOfListener.
    let (err, _) = refused(
        "SetLoadBalancerPoliciesOfListener with an unknown policy",
        elb.set_load_balancer_policies_of_listener()
            .load_balancer_name("web")
            .load_balancer_port(18080)
            .policy_names("nope")
            .send()
            .await,
        "PolicyNotFound",
    );
    assert!(err.is_policy_not_found_exception());
    let (err, _) = refused(
        "SetLoadBalancerPoliciesOfListener on a port without a listener",
        elb.set_load_balancer_policies_of_listener()
            .load_balancer_name("web")
            .load_balancer_port(18081)
            .policy_names("sticky-lb")
            .send()
            .await,
        "ListenerNotFound",
    );
    assert!(err.is_listener_not_found_exception());
    refused(
        "two stickiness policies on one listener",
        elb.set_load_balancer_policies_of_listener()
            .load_balancer_name("web")
            .load_balancer_port(18080)
            .policy_names("sticky-lb")
            .policy_names("sticky-app")
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    // A policy in use cannot be deleted; once the listener drops it, it can.
    refused(
        "DeleteLoadBalancerPolicy of a policy in use",
        elb.delete_load_balancer_policy()
            .load_balancer_name("web")
            .policy_name("sticky-app")
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    elb.set_load_balancer_policies_of_listener()
        .load_balancer_name("web")
        .load_balancer_port(18080)
        .set_policy_names(Some(vec![]))
        .send()
        .await
        .expect("SetLoadBalancerPoliciesOfListener with no policy");
    assert!(node.describe("web").await.listener_descriptions()[0]
        .policy_names()
        .is_empty());
    elb.delete_load_balancer_policy()
        .load_balancer_name("web")
        .policy_name("sticky-app")
        .send()
        .await
        .expect("DeleteLoadBalancerPolicy");
    let (_, status) = refused(
        "DeleteLoadBalancerPolicy of a deleted policy",
        elb.delete_load_balancer_policy()
            .load_balancer_name("web")
            .policy_name("sticky-app")
            .send()
            .await,
        "PolicyNotFound",
    );
    assert_eq!(status, 400);
    let policies = node
        .describe("web")
        .await
        .policies()
        .cloned()
        .expect("Policies");
    assert!(policies.app_cookie_stickiness_policies().is_empty());
    assert_eq!(policies.lb_cookie_stickiness_policies().len(), 1);

    // Without stickiness, no balancer cookie.
    let reply = node.wait_traffic(18080, "/").await;
    assert!(
        reply.response_headers("set-cookie").is_empty(),
        "{:?}",
        reply.headers
    );
}

#[tokio::test]
async fn ssl_negotiation_and_other_policies() {
    let node = Node::start_with_certs(&["www"]).await;
    let elb = &node.elb;
    let (backends, port) = backends_on_one_port(1).await;
    node.create(
        "web",
        vec![
            https(18443, port, node.cert("www")),
            listener("TCP", 18022, "TCP", port),
        ],
    )
    .await;
    node.fast_health_check("web", port).await;
    node.register("web", &backends).await;

    // A predefined policy as the reference: accepted.
    elb.create_load_balancer_policy()
        .load_balancer_name("web")
        .policy_name("tls12")
        .policy_type_name("SSLNegotiationPolicyType")
        .policy_attributes(attribute(
            "Reference-Security-Policy",
            "ELBSecurityPolicy-TLS-1-2-2017-01",
        ))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateLoadBalancerPolicy tls12: {}",
                DisplayErrorContext(&e)
            )
        });
    // Only protocols rustls cannot do, said explicitly: refused rather than weakened.
    let (err, status) = refused(
        "an SSL policy with TLSv1 on and TLSv1.2 and TLSv1.3 off",
        elb.create_load_balancer_policy()
            .load_balancer_name("web")
            .policy_name("weak")
            .policy_type_name("SSLNegotiationPolicyType")
            .policy_attributes(attribute("Protocol-TLSv1", "true"))
            .policy_attributes(attribute("Protocol-TLSv1.2", "false"))
            .policy_attributes(attribute("Protocol-TLSv1.3", "false"))
            .policy_attributes(attribute("AES128-SHA", "true"))
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    assert!(err.is_invalid_configuration_request_exception());
    assert_eq!(status, 409);
    refused(
        "an SSL policy referencing an unknown predefined policy",
        elb.create_load_balancer_policy()
            .load_balancer_name("web")
            .policy_name("weak")
            .policy_type_name("SSLNegotiationPolicyType")
            .policy_attributes(attribute(
                "Reference-Security-Policy",
                "ELBSecurityPolicy-1999-01",
            ))
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    let (err, _) = refused(
        "an unknown policy type",
        elb.create_load_balancer_policy()
            .load_balancer_name("web")
            .policy_name("x")
            .policy_type_name("NoSuchPolicyType")
            .send()
            .await,
        "PolicyTypeNotFound",
    );
    assert!(err.is_policy_type_not_found_exception());
    let (err, _) = refused(
        "a policy name taken",
        elb.create_load_balancer_policy()
            .load_balancer_name("web")
            .policy_name("tls12")
            .policy_type_name("SSLNegotiationPolicyType")
            .policy_attributes(attribute(
                "Reference-Security-Policy",
                "ELBSecurityPolicy-2016-08",
            ))
            .send()
            .await,
        "DuplicatePolicyName",
    );
    assert!(err.is_duplicate_policy_name_exception());

    // Applied to the HTTPS listener, which then serves real traffic.
    elb.set_load_balancer_policies_of_listener()
        .load_balancer_name("web")
        .load_balancer_port(18443)
        .policy_names("tls12")
        .send()
        .await
        .expect("SetLoadBalancerPoliciesOfListener tls12");
    refused(
        "an SSL policy on a TCP listener",
        elb.set_load_balancer_policies_of_listener()
            .load_balancer_name("web")
            .load_balancer_port(18022)
            .policy_names("tls12")
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    node.wait_in_service("web", 1).await;
    let tls = client_tls_config(&node.ca.cert_pem(), &[b"http/1.1"]);
    let addr = node.addr(18443);
    let deadline = Instant::now() + SETTLE;
    loop {
        match https_get(addr, HOST, tls.clone(), "/", &[]).await {
            Ok(reply) if reply.status == 200 => {
                assert_eq!(reply.instance(), "i-0");
                assert_eq!(reply.header("x-forwarded-proto"), Some("https"));
                break;
            }
            other => assert!(
                Instant::now() < deadline,
                "HTTPS through {addr}: {:?}",
                other.map(|r| r.describe())
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The PROXY protocol toward instances, as a backend-server policy.
    elb.create_load_balancer_policy()
        .load_balancer_name("web")
        .policy_name("proxy")
        .policy_type_name("ProxyProtocolPolicyType")
        .policy_attributes(attribute("ProxyProtocol", "true"))
        .send()
        .await
        .expect("CreateLoadBalancerPolicy proxy");
    refused(
        "ProxyProtocolPolicyType without its attribute",
        elb.create_load_balancer_policy()
            .load_balancer_name("web")
            .policy_name("proxy2")
            .policy_type_name("ProxyProtocolPolicyType")
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    elb.set_load_balancer_policies_for_backend_server()
        .load_balancer_name("web")
        .instance_port(i32::from(port))
        .policy_names("proxy")
        .send()
        .await
        .expect("SetLoadBalancerPoliciesForBackendServer");
    refused(
        "SetLoadBalancerPoliciesForBackendServer with an unknown policy",
        elb.set_load_balancer_policies_for_backend_server()
            .load_balancer_name("web")
            .instance_port(i32::from(port))
            .policy_names("nope")
            .send()
            .await,
        "PolicyNotFound",
    );
    refused(
        "an SSL negotiation policy on an instance port",
        elb.set_load_balancer_policies_for_backend_server()
            .load_balancer_name("web")
            .instance_port(i32::from(port))
            .policy_names("tls12")
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    let d = node.describe("web").await;
    let backend = d.backend_server_descriptions();
    assert_eq!(backend.len(), 1, "{backend:?}");
    assert_eq!(backend[0].instance_port(), Some(i32::from(port)));
    assert_eq!(backend[0].policy_names(), ["proxy"]);
    let mut other: Vec<&str> = d
        .policies()
        .expect("Policies")
        .other_policies()
        .iter()
        .map(String::as_str)
        .collect();
    other.sort();
    // ELB's default negotiation policy came with the HTTPS listener.
    assert_eq!(other, ["ELBSecurityPolicy-2016-08", "proxy", "tls12"]);
    let tls_listener = d
        .listener_descriptions()
        .iter()
        .find(|l| {
            l.listener()
                .is_some_and(|l| l.load_balancer_port() == 18443)
        })
        .expect("18443");
    assert_eq!(tls_listener.policy_names(), ["tls12"]);

    // DescribeLoadBalancerPolicies: without a load balancer, the predefined ones.
    let predefined = elb
        .describe_load_balancer_policies()
        .send()
        .await
        .expect("DescribeLoadBalancerPolicies");
    let predefined_names: BTreeSet<&str> = predefined
        .policy_descriptions()
        .iter()
        .filter_map(|p| p.policy_name())
        .collect();
    for want in [
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-TLS-1-2-2017-01",
    ] {
        assert!(
            predefined_names.contains(want),
            "{want} missing: {predefined_names:?}"
        );
    }
    for p in predefined.policy_descriptions() {
        assert_eq!(
            p.policy_type_name(),
            Some("SSLNegotiationPolicyType"),
            "{p:?}"
        );
        assert!(!p.policy_attribute_descriptions().is_empty(), "{p:?}");
    }
    let one = elb
        .describe_load_balancer_policies()
        .policy_names("ELBSecurityPolicy-2016-08")
        .send()
        .await
        .expect("DescribeLoadBalancerPolicies by name");
    assert_eq!(one.policy_descriptions().len(), 1);
    // With a load balancer: its own.
    let own = elb
        .describe_load_balancer_policies()
        .load_balancer_name("web")
        .send()
        .await
        .expect("DescribeLoadBalancerPolicies web");
    let mut own_names: Vec<&str> = own
        .policy_descriptions()
        .iter()
        .filter_map(|p| p.policy_name())
        .collect();
    own_names.sort();
    assert_eq!(own_names, ["ELBSecurityPolicy-2016-08", "proxy", "tls12"]);
    let proxy = own
        .policy_descriptions()
        .iter()
        .find(|p| p.policy_name() == Some("proxy"))
        .expect("proxy");
    assert_eq!(proxy.policy_type_name(), Some("ProxyProtocolPolicyType"));
    let attrs: Vec<(Option<&str>, Option<&str>)> = proxy
        .policy_attribute_descriptions()
        .iter()
        .map(|a| (a.attribute_name(), a.attribute_value()))
        .collect();
    assert_eq!(attrs, [(Some("ProxyProtocol"), Some("true"))]);
    let (err, _) = refused(
        "DescribeLoadBalancerPolicies of an unknown policy",
        elb.describe_load_balancer_policies()
            .load_balancer_name("web")
            .policy_names("nope")
            .send()
            .await,
        "PolicyNotFound",
    );
    assert!(err.is_policy_not_found_exception());
    refused(
        "DescribeLoadBalancerPolicies of an unknown load balancer",
        elb.describe_load_balancer_policies()
            .load_balancer_name("nope")
            .send()
            .await,
        "LoadBalancerNotFound",
    );

    // DescribeLoadBalancerPolicyTypes: all, and by name.
    let types = elb
        .describe_load_balancer_policy_types()
        .send()
        .await
        .expect("DescribeLoadBalancerPolicyTypes");
    let type_names: BTreeSet<&str> = types
        .policy_type_descriptions()
        .iter()
        .filter_map(|t| t.policy_type_name())
        .collect();
    for want in [
        "AppCookieStickinessPolicyType",
        "LBCookieStickinessPolicyType",
        "SSLNegotiationPolicyType",
        "ProxyProtocolPolicyType",
        "PublicKeyPolicyType",
        "BackendServerAuthenticationPolicyType",
    ] {
        assert!(type_names.contains(want), "{want} missing: {type_names:?}");
    }
    let one = elb
        .describe_load_balancer_policy_types()
        .policy_type_names("ProxyProtocolPolicyType")
        .send()
        .await
        .expect("DescribeLoadBalancerPolicyTypes by name");
    let t = &one.policy_type_descriptions();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].policy_type_name(), Some("ProxyProtocolPolicyType"));
    assert!(t[0].description().is_some_and(|d| !d.is_empty()));
    let attr = &t[0].policy_attribute_type_descriptions()[0];
    assert_eq!(
        (
            attr.attribute_name(),
            attr.attribute_type(),
            attr.cardinality()
        ),
        (Some("ProxyProtocol"), Some("Boolean"), Some("ONE"))
    );
    let (err, _) = refused(
        "DescribeLoadBalancerPolicyTypes of an unknown type",
        elb.describe_load_balancer_policy_types()
            .policy_type_names("NoSuchPolicyType")
            .send()
            .await,
        "PolicyTypeNotFound",
    );
    assert!(err.is_policy_type_not_found_exception());

    // Removing the backend policy, then the policy itself.
    elb.set_load_balancer_policies_for_backend_server()
        .load_balancer_name("web")
        .instance_port(i32::from(port))
        .set_policy_names(Some(vec![]))
        .send()
        .await
        .expect("clear the backend policies");
    assert!(node
        .describe("web")
        .await
        .backend_server_descriptions()
        .is_empty());
    elb.delete_load_balancer_policy()
        .load_balancer_name("web")
        .policy_name("proxy")
        .send()
        .await
        .expect("DeleteLoadBalancerPolicy proxy");
    let (err, _) = refused(
        "DeleteLoadBalancerPolicy of an unknown policy",
        elb.delete_load_balancer_policy()
            .load_balancer_name("web")
            .policy_name("proxy")
            .send()
            .await,
        "PolicyNotFound",
    );
    let _ = err;
}

#[tokio::test]

async fn an_ssl_policy_of_only_tls1_and_aes128_sha_is_refused() {
    let node = Node::start_with_certs(&["www"]).await;
    let elb = &node.elb;
    node.create("web", vec![https(18443, 8080, node.cert("www"))])
        .await;
    // What a client asks for: TLS 1.0 with AES128-SHA, and nothing else. rustls can do
    // neither; the policy must be refused, not turned into something else.
    let (err, status) = refused(
        "an SSL policy with only Protocol-TLSv1 and AES128-SHA",
        elb.create_load_balancer_policy()
            .load_balancer_name("web")
            .policy_name("weak")
            .policy_type_name("SSLNegotiationPolicyType")
            .policy_attributes(attribute("Protocol-TLSv1", "true"))
            .policy_attributes(attribute("AES128-SHA", "true"))
            .send()
            .await,
        "InvalidConfigurationRequest",
    );
    assert!(err.is_invalid_configuration_request_exception());
    assert_eq!(status, 409);
    let own = elb
        .describe_load_balancer_policies()
        .load_balancer_name("web")
        .send()
        .await
        .expect("DescribeLoadBalancerPolicies");
    // Only the default policy the HTTPS listener came with: the weak one was not created.
    let names: Vec<_> = own
        .policy_descriptions()
        .iter()
        .filter_map(|p| p.policy_name())
        .collect();
    assert_eq!(names, ["ELBSecurityPolicy-2016-08"], "{own:?}");
}

// ---------------------------------------------------------------------------------------------
// Attributes.

#[tokio::test]
async fn load_balancer_attributes_are_modified_and_described() {
    let node = Node::start().await;
    let elb = &node.elb;
    node.create("web", vec![http(18080, 8080)]).await;

    let attrs = elb
        .describe_load_balancer_attributes()
        .load_balancer_name("web")
        .send()
        .await
        .expect("DescribeLoadBalancerAttributes")
        .load_balancer_attributes()
        .cloned()
        .expect("LoadBalancerAttributes");
    // ELB's API defaults: connection draining off with a timeout of 300 s (only AWS's console
    // turns it on).
    assert_eq!(
        attrs.cross_zone_load_balancing().map(|c| c.enabled()),
        Some(false)
    );
    assert_eq!(
        attrs.connection_draining().map(|c| c.enabled()),
        Some(false)
    );
    assert_eq!(
        attrs.connection_draining().and_then(|c| c.timeout()),
        Some(300)
    );
    assert_eq!(
        attrs.connection_settings().map(|c| c.idle_timeout()),
        Some(60)
    );
    assert_eq!(attrs.access_log().map(|a| a.enabled()), Some(false));
    let additional = |a: &LoadBalancerAttributes, key: &str| {
        a.additional_attributes()
            .iter()
            .find(|x| x.key() == Some(key))
            .and_then(|x| x.value())
            .map(str::to_owned)
    };
    // Nothing set, nothing listed (fulcrum's own attribute included), as ELB answers.
    assert_eq!(attrs.additional_attributes(), []);
    assert_eq!(additional(&attrs, "fulcrum.balancing"), None);

    let wanted = LoadBalancerAttributes::builder()
        .cross_zone_load_balancing(CrossZoneLoadBalancing::builder().enabled(true).build())
        .connection_draining(
            ConnectionDraining::builder()
                .enabled(false)
                .timeout(30)
                .build(),
        )
        .connection_settings(
            ConnectionSettings::builder()
                .idle_timeout(120)
                .build()
                .expect("cs"),
        )
        .access_log(
            AccessLog::builder()
                .enabled(true)
                .s3_bucket_name("logs")
                .s3_bucket_prefix("web")
                .emit_interval(5)
                .build(),
        )
        .additional_attributes(
            AdditionalAttribute::builder()
                .key("fulcrum.balancing")
                .value("least_outstanding_requests")
                .build(),
        )
        .build();
    let out = elb
        .modify_load_balancer_attributes()
        .load_balancer_name("web")
        .load_balancer_attributes(wanted)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyLoadBalancerAttributes: {}", DisplayErrorContext(&e)));
    assert_eq!(out.load_balancer_name(), Some("web"));
    let echoed = out
        .load_balancer_attributes()
        .cloned()
        .expect("echoed attributes");
    let now = elb
        .describe_load_balancer_attributes()
        .load_balancer_name("web")
        .send()
        .await
        .expect("DescribeLoadBalancerAttributes")
        .load_balancer_attributes()
        .cloned()
        .expect("attributes");
    assert_eq!(echoed, now, "Modify echoes what Describe then shows");
    assert_eq!(
        now.cross_zone_load_balancing().map(|c| c.enabled()),
        Some(true)
    );
    assert_eq!(
        now.connection_draining()
            .map(|c| (c.enabled(), c.timeout())),
        Some((false, Some(30)))
    );
    assert_eq!(
        now.connection_settings().map(|c| c.idle_timeout()),
        Some(120)
    );
    let log = now.access_log().expect("AccessLog");
    assert!(log.enabled());
    assert_eq!(log.s3_bucket_name(), Some("logs"));
    assert_eq!(log.s3_bucket_prefix(), Some("web"));
    assert_eq!(log.emit_interval(), Some(5));
    assert_eq!(
        additional(&now, "fulcrum.balancing").as_deref(),
        Some("least_outstanding_requests")
    );

    // Only what is named changes.
    elb.modify_load_balancer_attributes()
        .load_balancer_name("web")
        .load_balancer_attributes(
            LoadBalancerAttributes::builder()
                .connection_settings(
                    ConnectionSettings::builder()
                        .idle_timeout(30)
                        .build()
                        .expect("cs"),
                )
                .build(),
        )
        .send()
        .await
        .expect("modify the idle timeout only");
    let after = elb
        .describe_load_balancer_attributes()
        .load_balancer_name("web")
        .send()
        .await
        .expect("describe")
        .load_balancer_attributes()
        .cloned()
        .expect("attributes");
    assert_eq!(
        after.connection_settings().map(|c| c.idle_timeout()),
        Some(30)
    );
    assert_eq!(after.connection_draining(), now.connection_draining());
    assert_eq!(after.access_log(), now.access_log());
    assert_eq!(after.additional_attributes(), now.additional_attributes());

    // Refusals leave the attributes as they were.
    let unknown_key = elb
        .modify_load_balancer_attributes()
        .load_balancer_name("web")
        .load_balancer_attributes(
            LoadBalancerAttributes::builder()
                .connection_settings(
                    ConnectionSettings::builder()
                        .idle_timeout(99)
                        .build()
                        .expect("cs"),
                )
                .additional_attributes(
                    AdditionalAttribute::builder()
                        .key("no.such.key")
                        .value("1")
                        .build(),
                )
                .build(),
        )
        .send()
        .await;
    let err = unknown_key.expect_err("an unknown additional attribute key must be refused");
    assert!(
        matches!(
            err.code(),
            Some(
                "LoadBalancerAttributeNotFound" | "ValidationError" | "InvalidConfigurationRequest"
            )
        ),
        "{}",
        DisplayErrorContext(&err)
    );
    refused(
        "fulcrum.balancing with an unknown algorithm",
        elb.modify_load_balancer_attributes()
            .load_balancer_name("web")
            .load_balancer_attributes(
                LoadBalancerAttributes::builder()
                    .additional_attributes(
                        AdditionalAttribute::builder()
                            .key("fulcrum.balancing")
                            .value("random")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await,
        "ValidationError",
    );
    for idle in [0, 4001] {
        refused(
            &format!("IdleTimeout {idle}"),
            elb.modify_load_balancer_attributes()
                .load_balancer_name("web")
                .load_balancer_attributes(
                    LoadBalancerAttributes::builder()
                        .connection_settings(
                            ConnectionSettings::builder()
                                .idle_timeout(idle)
                                .build()
                                .expect("cs"),
                        )
                        .build(),
                )
                .send()
                .await,
            "ValidationError",
        );
    }
    let last = elb
        .describe_load_balancer_attributes()
        .load_balancer_name("web")
        .send()
        .await
        .expect("describe")
        .load_balancer_attributes()
        .cloned()
        .expect("attributes");
    assert_eq!(last, after, "refused changes changed nothing");
    refused(
        "DescribeLoadBalancerAttributes of an unknown load balancer",
        elb.describe_load_balancer_attributes()
            .load_balancer_name("nope")
            .send()
            .await,
        "LoadBalancerNotFound",
    );
}

// ---------------------------------------------------------------------------------------------
// Tags and placement.

#[tokio::test]
async fn tags_are_added_described_and_removed() {
    let node = Node::start().await;
    let elb = &node.elb;
    node.create("web", vec![http(18080, 8080)]).await;
    node.create("api", vec![http(18081, 8080)]).await;

    elb.add_tags()
        .load_balancer_names("web")
        .tags(tag("env", "prod"))
        .tags(tag("team", "edge"))
        .send()
        .await
        .expect("AddTags");
    // A key again replaces its value.
    elb.add_tags()
        .load_balancer_names("web")
        .tags(tag("env", "staging"))
        .send()
        .await
        .expect("AddTags again");
    let out = elb
        .describe_tags()
        .load_balancer_names("web")
        .load_balancer_names("api")
        .send()
        .await
        .expect("DescribeTags");
    let tags_of = |name: &str| -> Vec<(String, String)> {
        let mut t: Vec<(String, String)> = out
            .tag_descriptions()
            .iter()
            .find(|d| d.load_balancer_name() == Some(name))
            .unwrap_or_else(|| panic!("no tags of {name}"))
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect();
        t.sort();
        t
    };
    assert_eq!(
        tags_of("web"),
        [
            ("env".into(), "staging".into()),
            ("team".into(), "edge".into())
        ]
    );
    assert!(tags_of("api").is_empty());

    let (err, _) = refused(
        "AddTags with a key twice",
        elb.add_tags()
            .load_balancer_names("web")
            .tags(tag("a", "1"))
            .tags(tag("a", "2"))
            .send()
            .await,
        "DuplicateTagKeys",
    );
    assert!(err.is_duplicate_tag_keys_exception());
    // 2 tags + 9 new ones = 11 > 10.
    let mut add = elb.add_tags().load_balancer_names("web");
    for i in 0..9 {
        add = add.tags(tag(&format!("k{i}"), "v"));
    }
    let (err, _) = refused("AddTags beyond 10 tags", add.send().await, "TooManyTags");
    assert!(err.is_too_many_tags_exception());
    let (err, _) = refused(
        "AddTags on an unknown load balancer",
        elb.add_tags()
            .load_balancer_names("nope")
            .tags(tag("a", "1"))
            .send()
            .await,
        "LoadBalancerNotFound",
    );
    assert!(err.is_access_point_not_found_exception());
    let (err, _) = refused(
        "CreateLoadBalancer with 11 tags",
        {
            let mut create = elb
                .create_load_balancer()
                .load_balancer_name("tagged")
                .listeners(http(18082, 8080))
                .availability_zones("us-east-1a");
            for i in 0..11 {
                create = create.tags(tag(&format!("k{i}"), "v"));
            }
            create.send().await
        },
        "TooManyTags",
    );
    assert!(err.is_too_many_tags_exception());
    assert_eq!(
        names(&node.all().await).len(),
        2,
        "no `tagged` half-created"
    );

    elb.remove_tags()
        .load_balancer_names("web")
        .tags(TagKeyOnly::builder().key("env").build())
        .send()
        .await
        .expect("RemoveTags");
    let out = elb
        .describe_tags()
        .load_balancer_names("web")
        .send()
        .await
        .expect("DescribeTags");
    let left: Vec<&str> = out.tag_descriptions()[0]
        .tags()
        .iter()
        .map(|t| t.key())
        .collect();
    assert_eq!(left, ["team"]);
    refused(
        "DescribeTags of an unknown load balancer",
        elb.describe_tags().load_balancer_names("nope").send().await,
        "LoadBalancerNotFound",
    );
}

#[tokio::test]
async fn placement_actions_are_recorded_and_echoed() {
    let node = Node::start().await;
    let elb = &node.elb;
    node.create("web", vec![http(18080, 8080)]).await;

    let out = elb
        .apply_security_groups_to_load_balancer()
        .load_balancer_name("web")
        .security_groups("sg-1")
        .security_groups("sg-2")
        .send()
        .await
        .expect("ApplySecurityGroupsToLoadBalancer");
    assert_eq!(out.security_groups(), ["sg-1", "sg-2"]);

    let out = elb
        .enable_availability_zones_for_load_balancer()
        .load_balancer_name("web")
        .availability_zones("us-east-1b")
        .send()
        .await
        .expect("EnableAvailabilityZonesForLoadBalancer");
    assert_eq!(out.availability_zones(), ["us-east-1a", "us-east-1b"]);
    let out = elb
        .disable_availability_zones_for_load_balancer()
        .load_balancer_name("web")
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect("DisableAvailabilityZonesForLoadBalancer");
    assert_eq!(out.availability_zones(), ["us-east-1b"]);
    let (_, status) = refused(
        "disabling the last zone",
        elb.disable_availability_zones_for_load_balancer()
            .load_balancer_name("web")
            .availability_zones("us-east-1b")
            .send()
            .await,
        "ValidationError",
    );
    assert_eq!(status, 400);

    let out = elb
        .attach_load_balancer_to_subnets()
        .load_balancer_name("web")
        .subnets("subnet-1")
        .subnets("subnet-2")
        .send()
        .await
        .expect("AttachLoadBalancerToSubnets");
    assert_eq!(out.subnets(), ["subnet-1", "subnet-2"]);
    let out = elb
        .detach_load_balancer_from_subnets()
        .load_balancer_name("web")
        .subnets("subnet-1")
        .send()
        .await
        .expect("DetachLoadBalancerFromSubnets");
    assert_eq!(out.subnets(), ["subnet-2"]);

    let d = node.describe("web").await;
    assert_eq!(d.security_groups(), ["sg-1", "sg-2"]);
    assert_eq!(d.availability_zones(), ["us-east-1b"]);
    assert_eq!(d.subnets(), ["subnet-2"]);

    refused(
        "ApplySecurityGroups on an unknown load balancer",
        elb.apply_security_groups_to_load_balancer()
            .load_balancer_name("nope")
            .security_groups("sg-1")
            .send()
            .await,
        "LoadBalancerNotFound",
    );
    refused(
        "EnableAvailabilityZones on an unknown load balancer",
        elb.enable_availability_zones_for_load_balancer()
            .load_balancer_name("nope")
            .availability_zones("us-east-1a")
            .send()
            .await,
        "LoadBalancerNotFound",
    );
    assert_eq!(node.describe("web").await, d, "refusals changed nothing");

    let limits = elb
        .describe_account_limits()
        .send()
        .await
        .expect("DescribeAccountLimits");
    let limits: Vec<(Option<&str>, Option<&str>)> = limits
        .limits()
        .iter()
        .map(|l| (l.name(), l.max()))
        .collect();
    for name in [
        "classic-load-balancers",
        "classic-listeners",
        "classic-registered-instances",
    ] {
        let max = limits
            .iter()
            .find(|(n, _)| *n == Some(name))
            .and_then(|(_, m)| *m)
            .unwrap_or_else(|| panic!("no limit {name} in {limits:?}"));
        assert!(max.parse::<u64>().is_ok_and(|m| m > 0), "{name} = {max}");
    }
}

/// Defaults and optional members as the ELB API reference gives them: Scheme's two values,
/// DescribeAccountLimits paged by PageSize (1 to 400) with NextMarker only before a further
/// page, and AccessLog's EmitInterval of 60 minutes when logging is enabled without one.
#[tokio::test]
async fn optional_members_and_defaults_as_elb_answers() {
    let node = Node::start().await;
    let elb = &node.elb;

    let (_, status) = refused(
        "CreateLoadBalancer with a Scheme ELB does not have",
        elb.create_load_balancer()
            .load_balancer_name("odd")
            .listeners(http(18081, 8080))
            .scheme("public")
            .send()
            .await,
        "InvalidScheme",
    );
    assert_eq!(status, 400);
    elb.create_load_balancer()
        .load_balancer_name("inside")
        .listeners(http(18082, 8080))
        .scheme("internal")
        .send()
        .await
        .unwrap_or_else(|e| panic!("an internal load balancer: {}", DisplayErrorContext(&e)));
    assert_eq!(node.describe("inside").await.scheme(), Some("internal"));

    // DescribeAccountLimits: one page by default, without NextMarker; PageSize pages.
    let all = elb
        .describe_account_limits()
        .send()
        .await
        .expect("DescribeAccountLimits");
    assert_eq!(all.limits().len(), 3, "{all:?}");
    assert_eq!(all.next_marker(), None);
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = elb
            .describe_account_limits()
            .page_size(2)
            .set_marker(marker.clone())
            .send()
            .await
            .expect("a page of DescribeAccountLimits");
        assert!(page.limits().len() <= 2, "{page:?}");
        names.extend(
            page.limits()
                .iter()
                .filter_map(|l| l.name())
                .map(str::to_owned),
        );
        match page.next_marker() {
            Some(m) => marker = Some(m.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        names,
        [
            "classic-load-balancers",
            "classic-listeners",
            "classic-registered-instances"
        ]
    );
    for size in [0, 401] {
        refused(
            "DescribeAccountLimits with PageSize out of 1..=400",
            elb.describe_account_limits().page_size(size).send().await,
            "ValidationError",
        );
    }

    // Access logs enabled without an interval: ELB's default, 60 minutes; none when disabled.
    let log_of = |lb: &'static str| async move {
        elb.describe_load_balancer_attributes()
            .load_balancer_name(lb)
            .send()
            .await
            .expect("DescribeLoadBalancerAttributes")
            .load_balancer_attributes()
            .and_then(|a| a.access_log())
            .cloned()
            .expect("AccessLog")
    };
    assert_eq!(log_of("inside").await.emit_interval(), None);
    elb.modify_load_balancer_attributes()
        .load_balancer_name("inside")
        .load_balancer_attributes(
            LoadBalancerAttributes::builder()
                .access_log(
                    AccessLog::builder()
                        .enabled(true)
                        .s3_bucket_name("logs")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("enable access logs: {}", DisplayErrorContext(&e)));
    assert_eq!(log_of("inside").await.emit_interval(), Some(60));
}

// ---------------------------------------------------------------------------------------------
// Authentication and the protocol.

/// Replaces the body after the SDK signed it, as a man in the middle would.
#[derive(Debug)]
struct TamperBody;

impl Intercept for TamperBody {
    fn name(&self) -> &'static str {
        "TamperBody"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request_mut();
        let body = request
            .body()
            .bytes()
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let tampered = String::from_utf8_lossy(&body).replace("PageSize=2", "PageSize=3");
        assert_ne!(
            tampered.as_bytes(),
            body.as_slice(),
            "nothing to tamper with"
        );
        request
            .headers_mut()
            .insert("content-length", tampered.len().to_string());
        *request.body_mut() = tampered.into_bytes().into();
        Ok(())
    }
}

#[tokio::test]
async fn requests_that_fail_authentication_are_refused_with_aws_codes() {
    let node = Node::start().await;
    node.create("web", vec![http(18080, 8080)]).await;

    // The admin key works.
    node.elb
        .describe_load_balancers()
        .send()
        .await
        .expect("DescribeLoadBalancers with the admin key");

    let wrong_secret = node.client_with(&node.key_id, "not-the-secret", "us-east-1");
    let (_, status) = refused(
        "a wrong secret",
        wrong_secret.describe_load_balancers().send().await,
        "SignatureDoesNotMatch",
    );
    assert_eq!(status, 403);

    let unknown_key = node.client_with("AKIAUNKNOWNUNKNOWN00", &node.secret, "us-east-1");
    let (_, status) = refused(
        "an unknown access key",
        unknown_key.describe_load_balancers().send().await,
        "InvalidClientTokenId",
    );
    assert_eq!(status, 403);

    let wrong_region = node.client_with(&node.key_id, &node.secret, "eu-west-1");
    let err = wrong_region
        .describe_load_balancers()
        .send()
        .await
        .expect_err("a request signed for eu-west-1 must be refused");
    assert_eq!(
        err.code(),
        Some("SignatureDoesNotMatch"),
        "{}",
        DisplayErrorContext(&err)
    );
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));

    // Signed 20 minutes ago: beyond the 15 minutes of clock skew.
    let past = SystemTime::now() - Duration::from_secs(20 * 60);
    let stale = Client::from_conf(
        node.elb
            .config()
            .to_builder()
            .time_source(aws_smithy_async::time::StaticTimeSource::new(past))
            .build(),
    );
    refused(
        "a request signed 20 minutes ago",
        stale.describe_load_balancers().send().await,
        "RequestExpired",
    );

    // The body changed after signing.
    let (_, status) = refused(
        "a tampered body",
        node.elb
            .describe_load_balancers()
            .page_size(2)
            .customize()
            .interceptor(TamperBody)
            .send()
            .await,
        "SignatureDoesNotMatch",
    );
    assert_eq!(status, 403);

    // No signature at all: AWS's error document, 403.
    let reply = raw_post(
        node.api(),
        "Action=DescribeLoadBalancers&Version=2012-06-01",
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.describe());
    let xml = reply.text();
    assert!(
        xml.contains(&format!("<ErrorResponse xmlns=\"{ELB_NAMESPACE}\">")),
        "{xml}"
    );
    assert_eq!(
        xml_text(&xml, "Code"),
        Some("MissingAuthenticationToken"),
        "{xml}"
    );
    assert_eq!(xml_text(&xml, "Type"), Some("Sender"), "{xml}");
    assert!(
        xml_text(&xml, "Message").is_some_and(|m| !m.is_empty()),
        "{xml}"
    );
    assert!(
        xml_text(&xml, "RequestId").is_some_and(|m| !m.is_empty()),
        "{xml}"
    );
    // The same with GET and the parameters in the query string.
    let reply = http_get(
        node.api(),
        "/?Action=DescribeLoadBalancers&Version=2012-06-01",
        &[],
    )
    .await
    .expect("GET /");
    assert_eq!(reply.status, 403, "{}", reply.describe());
    assert_eq!(
        xml_text(&reply.text(), "Code"),
        Some("MissingAuthenticationToken")
    );

    // Nothing of that changed anything.
    assert_eq!(names(&node.all().await), ["web"]);
}

/// A request mutation for `customize().mutate_request`: replaces `from` with `to` in the form
/// body before the SDK signs it, so that the request is well signed but says what the SDK
/// would never send.
fn rewrite_body(
    from: &'static str,
    to: &'static str,
) -> impl Fn(&mut elb::config::http::HttpRequest) + Send + Sync + 'static {
    move |req| {
        let body = req.body().bytes().map(<[u8]>::to_vec).unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(from), "no {from:?} in the body {text:?}");
        let rewritten = text.replace(from, to);
        req.headers_mut()
            .insert("content-length", rewritten.len().to_string());
        *req.body_mut() = rewritten.into_bytes().into();
    }
}

#[tokio::test]
async fn malformed_parameters_get_aws_errors_and_change_nothing() {
    let node = Node::start().await;
    let elb = &node.elb;
    node.create("web", vec![http(18080, 8080)]).await;
    let before = node.all().await;

    let create = || {
        elb.create_load_balancer()
            .load_balancer_name("other")
            .listeners(http(18081, 8080))
            .availability_zones("us-east-1a")
    };
    for (what, from, to) in [
        (
            "a port that is not a number",
            "LoadBalancerPort=18081",
            "LoadBalancerPort=eighty",
        ),
        (
            "a port out of range",
            "LoadBalancerPort=18081",
            "LoadBalancerPort=70000",
        ),
        ("port 0", "InstancePort=8080", "InstancePort=0"),
        (
            "a broken percent-encoding",
            "LoadBalancerName=other",
            "LoadBalancerName=ot%zzher",
        ),
        (
            "a member index 0",
            "Listeners.member.1.",
            "Listeners.member.0.",
        ),
        (
            "no listener protocol",
            "Listeners.member.1.Protocol=HTTP",
            "Listeners.member.1.Nothing=HTTP",
        ),
        (
            "no name",
            "LoadBalancerName=other",
            "LoadBalancerNome=other",
        ),
    ] {
        let err = create()
            .customize()
            .mutate_request(rewrite_body(from, to))
            .send()
            .await
            .expect_err(what);
        let status = err.raw_response().map(|r| r.status().as_u16());
        assert!(
            matches!(
                err.code(),
                Some("ValidationError" | "MalformedQueryString" | "InvalidParameterValue")
            ),
            "{what}: {}",
            DisplayErrorContext(&err)
        );
        assert!(
            matches!(status, Some(400 | 404)),
            "{what}: status {status:?}"
        );
        assert!(
            err.message().is_some_and(|m| !m.is_empty()),
            "{what}: no message"
        );
    }
    assert_eq!(node.all().await, before, "nothing was created");

    // A body beyond the API's limit is refused before it is read further.
    let big = format!(
        "Action=DescribeLoadBalancers&Version=2012-06-01&Pad={}",
        "x".repeat(2 << 20)
    );
    let reply = raw_post(node.api(), &big).await;
    assert_eq!(reply.status, 413, "{}", reply.describe());
    assert_eq!(
        xml_text(&reply.text(), "Code"),
        Some("RequestEntityTooLarge"),
        "{}",
        reply.describe()
    );
    // Still serving.
    assert_eq!(node.all().await, before);
}

#[tokio::test]
async fn an_unknown_action_is_invalid_action() {
    let node = Node::start().await;
    // The SDK has no unknown action: rename a known one in the body before the SDK signs it.
    let err = node
        .elb
        .describe_account_limits()
        .customize()
        .mutate_request(rewrite_body(
            "Action=DescribeAccountLimits",
            "Action=LaunchTheRockets",
        ))
        .send()
        .await
        .expect_err("an unknown action must be refused");
    assert_eq!(
        err.code(),
        Some("InvalidAction"),
        "{}",
        DisplayErrorContext(&err)
    );
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert!(
        err.message()
            .is_some_and(|m| m.contains("LaunchTheRockets")),
        "{}",
        DisplayErrorContext(&err)
    );
}

#[tokio::test]

async fn every_answer_carries_its_request_id() {
    use elb::operation::RequestId;
    let node = Node::start().await;
    // The SDKs read the request id from the x-amzn-RequestId header, on success as on error.
    let out = node
        .elb
        .describe_account_limits()
        .send()
        .await
        .expect("DescribeAccountLimits");
    assert!(
        out.request_id().is_some_and(|id| !id.is_empty()),
        "a successful answer has no request id: {out:?}"
    );
    let err = node
        .elb
        .describe_load_balancers()
        .load_balancer_names("nope")
        .send()
        .await
        .expect_err("LoadBalancerNotFound");
    assert!(
        err.request_id().is_some_and(|id| !id.is_empty()),
        "{}",
        DisplayErrorContext(&err)
    );
}
