//! HTTP and HTTPS listeners end to end: real TLS on loopback, real instances.

mod common;

use std::time::Duration;

use common::*;
use fulcrum_model::{Attributes, Balancing, InstanceId};
use fulcrum_proxy::HealthState;
use fulcrum_testkit::{http_get, https_get, BlackHole, Conn};

#[tokio::test]
async fn https_terminates_tls_and_forwards_h1_and_h2() {
    let node = Node::start().await;
    let cert = node.certificate("www", &["www.example.test"]).await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("web", vec![https(lb_port, port, &[&cert])], &backends)
        .await;

    for alpn in [&b"http/1.1"[..], b"h2"] {
        let reply = https_get(
            node.addr(lb_port),
            "www.example.test",
            node.tls_client(&[alpn]),
            "/hello?x=1",
            &[],
        )
        .await
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.describe());
        let want = if alpn == b"h2" {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        assert_eq!(reply.version, want);
        let seen = reply.json();
        assert_eq!(seen["path"], "/hello");
        assert_eq!(seen["query"], "x=1");
        // The instance received plain HTTP/1.1 with the client's host name.
        assert_eq!(seen["version"], "HTTP/1.1");
        let host = format!("www.example.test:{lb_port}");
        assert_eq!(reply.header("host"), Some(host.as_str()));
        assert_eq!(reply.header("x-forwarded-proto"), Some("https"));
        assert_eq!(
            reply.header("x-forwarded-port"),
            Some(lb_port.to_string().as_str())
        );
    }
}

#[tokio::test]
async fn sni_picks_the_certificate_and_wildcards_match_one_label() {
    let node = Node::start().await;
    let mut ids = Vec::new();
    let mut ders = Vec::new();
    for (name, dns) in [
        ("default", "default.test"),
        ("api", "api.example.test"),
        ("wild", "*.apps.test"),
    ] {
        let (body, key) = node.ca.issue(&[dns]);
        ders.push(fulcrum_testkit::certs_from_pem(&body)[0].to_vec());
        ids.push(node.upload(name, body, key).await);
    }
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    let certs: Vec<&str> = ids.iter().map(String::as_str).collect();
    node.load_balancer("sni", vec![https(lb_port, port, &certs)], &backends)
        .await;

    let served = |name: &'static str| {
        let config = node.tls_client(&[b"http/1.1"]);
        let addr = node.addr(lb_port);
        async move {
            let conn = Conn::https(addr, name, config).await?;
            Ok::<_, fulcrum_testkit::BoxError>(conn.peer_cert_der().unwrap().to_vec())
        }
    };
    assert_eq!(served("api.example.test").await.unwrap(), ders[1]);
    assert_eq!(served("API.Example.Test").await.unwrap(), ders[1]);
    assert_eq!(served("one.apps.test").await.unwrap(), ders[2]);
    assert_eq!(served("default.test").await.unwrap(), ders[0]);
    // Two labels under the wildcard get the default certificate, which the client (checking
    // the name) refuses.
    assert!(served("a.b.apps.test").await.is_err());
}

#[tokio::test]
async fn forwarded_headers_cannot_be_spoofed() {
    let node = Node::start().await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("fwd", vec![http(lb_port, port)], &backends)
        .await;
    let reply = http_get(
        node.addr(lb_port),
        "/",
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
        ],
    )
    .await
    .unwrap();
    // The client's claim is kept, the real address appended: the application trusts the last
    // entry, which only the balancer writes.
    assert_eq!(
        reply.header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(reply.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        reply.header("x-forwarded-port"),
        Some(lb_port.to_string().as_str())
    );
}

#[tokio::test]
async fn round_robin_takes_turns() {
    let node = Node::start().await;
    let (backends, port) = node.backends(3).await;
    let lb_port = node.port();
    node.load_balancer("rr", vec![http(lb_port, port)], &backends)
        .await;
    let mut conn = Conn::http(node.addr(lb_port)).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(conn.get("/", &[]).await.unwrap().instance());
    }
    for b in &backends {
        assert_eq!(
            seen.iter().filter(|s| *s == b.name()).count(),
            3,
            "{seen:?}"
        );
    }
    // Consecutive requests never hit the same instance twice in a row.
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
}

#[tokio::test]
async fn least_outstanding_requests_avoids_the_busy_instance() {
    let node = Node::start().await;
    let (backends, port) = node.backends(2).await;
    let lb_port = node.port();
    node.load_balancer("lor", vec![http(lb_port, port)], &backends)
        .await;
    node.change(|s| {
        s.set_attributes(
            "lor",
            Attributes {
                balancing: Some(Balancing::LeastOutstandingRequests),
                ..Attributes::default()
            },
        )
    })
    .await;
    // Tie up one instance with slow requests...
    let addr = node.addr(lb_port);
    let slow: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(
                async move { http_get(addr, "/delay/1500", &[]).await.unwrap().instance() },
            )
        })
        .collect();
    let busy_wait = backends.clone();
    fulcrum_testkit::eventually(
        "slow requests in flight",
        Duration::from_secs(5),
        move || {
            let b = busy_wait.clone();
            async move { b.iter().map(|b| b.in_flight()).sum::<u64>() == 3 }
        },
    )
    .await;
    let busy = backends
        .iter()
        .max_by_key(|b| b.in_flight())
        .unwrap()
        .name()
        .to_owned();
    // ...then every quick request goes to the other one.
    for _ in 0..6 {
        let reply = http_get(addr, "/", &[]).await.unwrap();
        assert_ne!(reply.instance(), busy);
    }
    for s in slow {
        s.await.unwrap();
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried_on_another_instance() {
    let node = Node::start().await;
    let (backends, port) = node.backends(2).await;
    let lb_port = node.port();
    node.load_balancer("retry", vec![http(lb_port, port)], &backends)
        .await;
    // The instance dies; health checks have not noticed yet (thresholds), yet no request fails.
    backends[0].stop().await;
    for _ in 0..6 {
        let reply = http_get(node.addr(lb_port), "/", &[]).await.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.instance(), backends[1].name());
    }
}

#[tokio::test]
async fn balancer_errors_502_503_504() {
    let node = Node::start().await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("errs", vec![http(lb_port, port)], &backends)
        .await;
    node.change(|s| {
        s.set_attributes(
            "errs",
            Attributes {
                idle_timeout_secs: 1,
                ..Attributes::default()
            },
        )
    })
    .await;
    let addr = node.addr(lb_port);

    // 502: the instance closes the connection without answering.
    assert_eq!(http_get(addr, "/close", &[]).await.unwrap().status, 502);
    // 504: the instance answers later than the idle timeout.
    let started = std::time::Instant::now();
    assert_eq!(
        http_get(addr, "/delay/3000", &[]).await.unwrap().status,
        504
    );
    assert!(started.elapsed() < Duration::from_millis(2500));
    // 503: no instance in service.
    backends[0].set_healthy(false);
    node.wait_state("errs", &ids(&backends)[0], HealthState::OutOfService)
        .await;
    assert_eq!(http_get(addr, "/", &[]).await.unwrap().status, 503);
}

#[tokio::test]
async fn an_instance_that_never_answers_gets_504_not_a_hang() {
    let node = Node::start().await;
    let hole = BlackHole::start().await;
    let lb_port = node.port();
    let id = InstanceId::parse(&hole.addr().ip().to_string()).unwrap();
    node.change(|s| {
        s.create_load_balancer("hole", vec![http(lb_port, hole.addr().port())], 0)?;
        s.configure_health_check("hole", fast_check(&format!("TCP:{}", hole.addr().port())))?;
        s.set_attributes(
            "hole",
            Attributes {
                idle_timeout_secs: 1,
                ..Attributes::default()
            },
        )?;
        s.register_instances("hole", std::slice::from_ref(&id))
    })
    .await;
    node.wait_state("hole", &id, HealthState::InService).await;
    let reply = http_get(node.addr(lb_port), "/", &[]).await.unwrap();
    assert_eq!(reply.status, 504);
}

#[tokio::test]
async fn ssl_negotiation_policies_set_the_protocols_live() {
    use fulcrum_model::{Policy, PolicyKind};
    let node = Node::start().await;
    let cert = node.certificate("neg", &["neg.test"]).await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("neg", vec![https(lb_port, port, &[&cert])], &backends)
        .await;
    let policy = |name: &str, attrs: &[(&str, &str)]| Policy {
        name: name.into(),
        kind: PolicyKind::Other {
            type_name: "SSLNegotiationPolicyType".into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    };
    node.change(|s| {
        s.create_policy(
            "neg",
            policy(
                "tls12",
                &[
                    (
                        "Reference-Security-Policy",
                        "ELBSecurityPolicy-TLS-1-2-2017-01",
                    ),
                    ("Protocol-TLSv1.3", "false"),
                ],
            ),
        )?;
        s.create_policy(
            "neg",
            policy(
                "tls13",
                &[("Protocol-TLSv1.2", "false"), ("Protocol-TLSv1.3", "true")],
            ),
        )?;
        s.set_listener_policies("neg", lb_port, vec!["tls12".into()])
    })
    .await;
    let ca = node.ca.cert_pem();
    let only = |v: &'static rustls::SupportedProtocolVersion| {
        fulcrum_testkit::client_tls_config_versions(&ca, &[b"http/1.1"], &[v])
    };
    let addr = node.addr(lb_port);
    let get = |config| https_get(addr, "neg.test", config, "/", &[]);
    assert_eq!(
        get(only(&rustls::version::TLS12)).await.unwrap().status,
        200
    );
    assert!(
        get(only(&rustls::version::TLS13)).await.is_err(),
        "TLS 1.3 is off"
    );

    let mut open = Conn::https(addr, "neg.test", only(&rustls::version::TLS12))
        .await
        .unwrap();
    node.change(|s| s.set_listener_policies("neg", lb_port, vec!["tls13".into()]))
        .await;
    assert!(
        get(only(&rustls::version::TLS12)).await.is_err(),
        "TLS 1.2 is off now"
    );
    assert_eq!(
        get(only(&rustls::version::TLS13)).await.unwrap().status,
        200
    );
    assert_eq!(
        open.get("/", &[]).await.unwrap().status,
        200,
        "an open connection keeps its TLS"
    );
}

#[tokio::test]
async fn returning_clients_resume_their_tls_sessions() {
    let node = Node::start().await;
    let cert = node.certificate("resume", &["resume.test"]).await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("resume", vec![https(lb_port, port, &[&cert])], &backends)
        .await;
    let name = rustls::pki_types::ServerName::try_from("resume.test").unwrap();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        // One client config keeps its session tickets (TLS 1.3) or ids (TLS 1.2) between
        // connections, as a browser does.
        let config = fulcrum_testkit::client_tls_config_versions(
            &node.ca.cert_pem(),
            &[b"http/1.1"],
            &[version],
        );
        let mut kinds = Vec::new();
        for _ in 0..3 {
            let tcp = tokio::net::TcpStream::connect(node.addr(lb_port))
                .await
                .unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name.clone(), tcp)
                .await
                .unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // Read the answer so that TLS 1.3's tickets, sent after the handshake, arrive.
            tls.write_all(b"GET / HTTP/1.1\r\nHost: resume.test\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = Vec::new();
            tls.read_to_end(&mut out).await.unwrap();
            assert!(out.starts_with(b"HTTP/1.1 200"));
            kinds.push(tls.get_ref().1.handshake_kind());
        }
        assert_eq!(kinds[0], Some(rustls::HandshakeKind::Full), "{version:?}");
        assert_eq!(
            kinds[1],
            Some(rustls::HandshakeKind::Resumed),
            "{version:?}: {kinds:?}"
        );
        assert_eq!(
            kinds[2],
            Some(rustls::HandshakeKind::Resumed),
            "{version:?}: {kinds:?}"
        );
    }
}

#[tokio::test]
async fn idle_client_connections_are_closed_after_the_idle_timeout() {
    use fulcrum_model::Attributes;
    let node = Node::start().await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("idle", vec![http(lb_port, port)], &backends)
        .await;
    node.change(|s| {
        s.set_attributes(
            "idle",
            Attributes {
                idle_timeout_secs: 1,
                ..Attributes::default()
            },
        )
    })
    .await;
    // One keep-alive request, then silence: the balancer closes the connection.
    let started = std::time::Instant::now();
    let got = fulcrum_testkit::raw_exchange(
        node.addr(lb_port),
        b"GET / HTTP/1.1\r\nHost: idle.test\r\n\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let idle = started.elapsed();
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_millis(2500),
        "{idle:?}"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_by_the_idle_timeout() {
    use fulcrum_model::Attributes;
    let node = Node::start().await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("slowread", vec![http(lb_port, port)], &backends)
        .await;
    node.change(|s| {
        s.set_attributes(
            "slowread",
            Attributes {
                idle_timeout_secs: 1,
                ..Attributes::default()
            },
        )
    })
    .await;
    // Ask for 200 MB and read none of it: buffers fill, nothing moves, the idle timeout ends it
    // and the instance is let go.
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(node.addr(lb_port))
        .await
        .unwrap();
    s.write_all(b"GET /bytes/200000000 HTTP/1.1\r\nHost: slow.test\r\n\r\n")
        .await
        .unwrap();
    let b = backends[0].clone();
    fulcrum_testkit::eventually(
        "the instance to be streaming",
        Duration::from_secs(5),
        move || {
            let b = b.clone();
            async move { b.in_flight() == 1 }
        },
    )
    .await;
    let b = backends[0].clone();
    fulcrum_testkit::eventually(
        "the stalled exchange to be cut",
        Duration::from_secs(5),
        move || {
            let b = b.clone();
            async move { b.in_flight() == 0 }
        },
    )
    .await;
    drop(s);
    assert_eq!(
        http_get(node.addr(lb_port), "/", &[]).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn instance_connections_are_kept_alive_and_reused() {
    let node = Node::start().await;
    let cert = node.certificate("pool", &["pool.test"]).await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("pool", vec![https(lb_port, port, &[&cert])], &backends)
        .await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let mut conn = Conn::https(node.addr(lb_port), "pool.test", node.tls_client(&[alpn]))
            .await
            .unwrap();
        // A length-delimited body and a chunked one: both end the exchange cleanly.
        conn.get("/bytes/1024", &[]).await.unwrap();
        let before = backends[0].connections();
        for i in 0..40 {
            let path = if i % 2 == 0 { "/bytes/1024" } else { "/echo" };
            assert_eq!(conn.get(path, &[]).await.unwrap().status, 200);
        }
        // Health checks open a connection now and then; requests must not.
        let opened = backends[0].connections() - before;
        assert!(
            opened <= 3,
            "{opened} new instance connections for 40 requests over {alpn:?}"
        );
    }
}

/// An instance that speaks HTTP/1.0: the client still gets the balancer's own version in the
/// status line, as RFC 9110 asks of an intermediary.
#[tokio::test]
async fn an_http_1_0_instance_is_answered_for_in_http_1_1() {
    let node = Node::start().await;
    let ip = node.instance_ip(0);
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let instance_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    let port = node.port();
    let id = InstanceId::parse(&ip.to_string()).unwrap();
    node.change(|s| {
        s.create_load_balancer("old", vec![http(port, instance_port)], 0)?;
        s.configure_health_check("old", fast_check(&format!("TCP:{instance_port}")))?;
        s.register_instances("old", std::slice::from_ref(&id))
    })
    .await;
    node.wait_state("old", &id, HealthState::InService).await;
    let reply = http_get(node.addr(port), "/", &[]).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.version, http::Version::HTTP_11);
    assert_eq!(&reply.body[..], b"ok");
}
