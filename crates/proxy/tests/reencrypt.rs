//! TLS from the balancer to instances: self-signed instance certificates, public-key pinning,
//! and a client certificate so that instances serve only the balancer.

mod common;

use std::net::SocketAddr;

use common::*;
use fulcrum_model::{InstanceId, Listener, Policy, PolicyKind, Protocol};
use fulcrum_proxy::HealthState;
use fulcrum_testkit::{https_get, Backend, TestCa};

fn other(name: &str, type_name: &str, attrs: &[(&str, &str)]) -> Policy {
    Policy {
        name: name.into(),
        kind: PolicyKind::Other {
            type_name: type_name.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    }
}

/// An HTTPS load balancer in front of one TLS instance; the health check is `HTTPS:port/health`
/// over the same TLS as traffic. Returns the listener port.
async fn https_to_https(node: &Node, name: &str, instance: &Backend, policies: Vec<Policy>) -> u16 {
    let cert = node
        .certificate(&format!("{name}-front"), &["front.test"])
        .await;
    let port = instance.addr().port();
    let lb_port = node.port();
    let mut listener = Listener::new(Protocol::Https, lb_port, Protocol::Https, port);
    listener.certificates.push(cert);
    let id = InstanceId::parse(&instance.addr().ip().to_string()).unwrap();
    let names: Vec<String> = policies
        .iter()
        .filter(|p| p.kind.type_name() != "PublicKeyPolicyType")
        .map(|p| p.name.clone())
        .collect();
    node.change(|s| {
        s.create_load_balancer(name, vec![listener], 0)?;
        for p in policies {
            s.create_policy(name, p)?;
        }
        if !names.is_empty() {
            s.set_backend_policies(name, port, names)?;
        }
        s.configure_health_check(name, fast_check(&format!("HTTPS:{port}/health")))?;
        s.register_instances(name, &[id])
    })
    .await;
    lb_port
}

#[tokio::test]
async fn https_instances_with_self_signed_certificates() {
    let node = Node::start().await;
    let (cert, key) = fulcrum_testkit::self_signed(&["instance.internal"]);
    let tls = fulcrum_testkit::server_tls_config(&cert, &key, &[b"http/1.1"]);
    let instance = Backend::start_tls_on("tls-0", SocketAddr::new(node.instance_ip(0), 0), tls)
        .await
        .unwrap();
    let lb_port = https_to_https(&node, "reenc", &instance, vec![]).await;
    let id = InstanceId::parse(&instance.addr().ip().to_string()).unwrap();
    node.wait_state("reenc", &id, HealthState::InService).await;
    let reply = https_get(
        node.addr(lb_port),
        "front.test",
        node.tls_client(&[b"h2"]),
        "/",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.describe());
    let seen = reply.json();
    assert_eq!(seen["tls"], true, "the instance got TLS: {seen}");
    assert_eq!(reply.header("x-forwarded-proto"), Some("https"));
}

#[tokio::test]
async fn a_pinned_key_admits_the_right_instance_and_refuses_another() {
    let node = Node::start().await;
    let (cert, key) = fulcrum_testkit::self_signed(&["instance.internal"]);
    let tls = fulcrum_testkit::server_tls_config(&cert, &key, &[b"http/1.1"]);
    let instance = Backend::start_tls_on("pinned", SocketAddr::new(node.instance_ip(0), 0), tls)
        .await
        .unwrap();
    let id = InstanceId::parse(&instance.addr().ip().to_string()).unwrap();

    // The pin is given as the instance's certificate; its public key is what counts.
    let pinned = vec![
        other("key", "PublicKeyPolicyType", &[("PublicKey", &cert)]),
        other(
            "auth",
            "BackendServerAuthenticationPolicyType",
            &[("PublicKeyPolicyName", "key")],
        ),
    ];
    let lb_port = https_to_https(&node, "pin", &instance, pinned).await;
    node.wait_state("pin", &id, HealthState::InService).await;
    let reply = https_get(
        node.addr(lb_port),
        "front.test",
        node.tls_client(&[b"http/1.1"]),
        "/",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);

    // Pin another key: the instance fails its checks and gets no traffic.
    let wrong_cert = TestCa::new("other").issue(&["x.internal"]).0;
    node.change(|s| {
        s.set_backend_policies("pin", instance.addr().port(), vec![])?;
        s.delete_policy("pin", "auth")?;
        s.delete_policy("pin", "key")?;
        s.create_policy(
            "pin",
            other("key", "PublicKeyPolicyType", &[("PublicKey", &wrong_cert)]),
        )?;
        s.create_policy(
            "pin",
            other(
                "auth",
                "BackendServerAuthenticationPolicyType",
                &[("PublicKeyPolicyName", "key")],
            ),
        )?;
        s.set_backend_policies("pin", instance.addr().port(), vec!["auth".into()])
    })
    .await;
    node.wait_state("pin", &id, HealthState::OutOfService).await;
    let status = node.health("pin", &id).unwrap();
    assert!(
        status
            .description
            .contains("not one of the backend authentication policy's keys"),
        "{status:?}"
    );
    let reply = https_get(
        node.addr(lb_port),
        "front.test",
        node.tls_client(&[b"http/1.1"]),
        "/",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 503);
}

#[tokio::test]
async fn an_instance_requiring_a_client_certificate_is_served_only_through_the_balancer() {
    let node = Node::start().await;
    // The instance trusts one CA for clients: the one that issued the balancer's certificate.
    let clients = TestCa::new("balancer clients");
    let (instance_cert, instance_key) = fulcrum_testkit::self_signed(&["instance.internal"]);
    let tls = fulcrum_testkit::server_tls_config_mtls(
        &instance_cert,
        &instance_key,
        &clients.cert_pem(),
        &[b"http/1.1"],
    );
    let instance = Backend::start_tls_on("mtls", SocketAddr::new(node.instance_ip(0), 0), tls)
        .await
        .unwrap();
    let (balancer_cert, balancer_key) = clients.issue(&["balancer.internal"]);
    node.upload("balancer-client", balancer_cert, balancer_key)
        .await;
    let policies = vec![other(
        "client-cert",
        "BackendClientCertificatePolicyType",
        &[("ServerCertificateName", "balancer-client")],
    )];
    let lb_port = https_to_https(&node, "mtls", &instance, policies).await;
    let id = InstanceId::parse(&instance.addr().ip().to_string()).unwrap();
    node.wait_state("mtls", &id, HealthState::InService).await;
    let reply = https_get(
        node.addr(lb_port),
        "front.test",
        node.tls_client(&[b"http/1.1"]),
        "/",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["client_cert"], true);

    // Anyone else, without the balancer's certificate, is turned away by the instance itself.
    let direct = fulcrum_testkit::client_tls_config(&instance_cert, &[b"http/1.1"]);
    assert!(
        https_get(instance.addr(), "instance.internal", direct, "/", &[])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn ssl_to_ssl_carries_bytes_over_tls_both_ways() {
    let node = Node::start().await;
    let (cert, key) = fulcrum_testkit::self_signed(&["instance.internal"]);
    // A TLS instance speaking HTTP is enough to see bytes go both ways through an SSL listener.
    let tls = fulcrum_testkit::server_tls_config(&cert, &key, &[]);
    let instance = Backend::start_tls_on("ssl", SocketAddr::new(node.instance_ip(0), 0), tls)
        .await
        .unwrap();
    let front = node.certificate("ssl-front", &["front.test"]).await;
    let port = instance.addr().port();
    let lb_port = node.port();
    let mut listener = Listener::new(Protocol::Ssl, lb_port, Protocol::Ssl, port);
    listener.certificates.push(front);
    let id = InstanceId::parse(&instance.addr().ip().to_string()).unwrap();
    node.change(|s| {
        s.create_load_balancer("ssl2ssl", vec![listener], 0)?;
        s.configure_health_check("ssl2ssl", fast_check(&format!("SSL:{port}")))?;
        s.register_instances("ssl2ssl", std::slice::from_ref(&id))
    })
    .await;
    node.wait_state("ssl2ssl", &id, HealthState::InService)
        .await;
    let reply = https_get(
        node.addr(lb_port),
        "front.test",
        node.tls_client(&[b"http/1.1"]),
        "/bytes",
        &[],
    )
    .await;
    let reply = reply.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(reply.json()["tls"], true);
}
