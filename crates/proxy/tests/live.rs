//! Health, stickiness and live changes: the state changes while traffic flows.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use fulcrum_model::{Policy, PolicyKind};
use fulcrum_proxy::HealthState;
use fulcrum_testkit::{http_get, https_get, Conn};

#[tokio::test]
async fn health_moves_instances_out_of_and_back_into_service() {
    let node = Node::start().await;
    let (backends, port) = node.backends(2).await;
    let lb_port = node.port();
    let ids = ids(&backends);
    // A fresh instance starts out of service until it passes HealthyThreshold checks.
    node.change(|s| {
        s.create_load_balancer("hc", vec![http(lb_port, port)], 0)?;
        s.configure_health_check("hc", fast_check(&format!("HTTP:{port}/health")))?;
        s.register_instances("hc", &ids)
    })
    .await;
    let first = node.health("hc", &ids[0]).unwrap();
    assert_eq!(first.state, HealthState::OutOfService);
    assert_eq!(first.reason_code, "ELB");
    assert!(first.description.contains("registration"), "{first:?}");
    node.wait_state("hc", &ids[0], HealthState::InService).await;
    node.wait_state("hc", &ids[1], HealthState::InService).await;

    backends[0].set_healthy(false);
    node.wait_state("hc", &ids[0], HealthState::OutOfService)
        .await;
    let failed = node.health("hc", &ids[0]).unwrap();
    assert_eq!(failed.reason_code, "Instance");
    assert!(failed.description.contains("503"), "{failed:?}");
    for _ in 0..4 {
        let reply = http_get(node.addr(lb_port), "/", &[]).await.unwrap();
        assert_eq!(
            reply.instance(),
            backends[1].name(),
            "only in-service instances get traffic"
        );
    }

    backends[0].set_healthy(true);
    node.wait_state("hc", &ids[0], HealthState::InService).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        seen.insert(
            http_get(node.addr(lb_port), "/", &[])
                .await
                .unwrap()
                .instance(),
        );
    }
    assert_eq!(seen.len(), 2, "the instance is back in rotation");
}

fn cookie_of(reply: &fulcrum_testkit::Reply) -> Option<String> {
    reply
        .response_headers("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("AWSELB="))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

#[tokio::test]
async fn lb_cookie_stickiness_over_https_and_replacement_of_a_failed_instance() {
    let node = Node::start().await;
    let cert = node.certificate("sticky", &["sticky.test"]).await;
    let (backends, port) = node.backends(3).await;
    let lb_port = node.port();
    node.load_balancer("sticky", vec![https(lb_port, port, &[&cert])], &backends)
        .await;
    node.change(|s| {
        s.create_policy(
            "sticky",
            Policy {
                name: "lb-cookie".into(),
                kind: PolicyKind::LbCookieStickiness {
                    expiration_secs: Some(300),
                },
            },
        )?;
        s.set_listener_policies("sticky", lb_port, vec!["lb-cookie".into()])
    })
    .await;
    let get = |cookie: Option<String>| {
        let addr = node.addr(lb_port);
        let config = node.tls_client(&[b"h2"]);
        async move {
            let headers: Vec<(&str, &str)> = cookie
                .as_deref()
                .map(|c| ("cookie", c))
                .into_iter()
                .collect();
            https_get(addr, "sticky.test", config, "/", &headers)
                .await
                .unwrap()
        }
    };
    let first = get(None).await;
    let set = first.response_headers("set-cookie");
    assert!(set.iter().any(|c| c.contains("Max-Age=300")), "{set:?}");
    let cookie = cookie_of(&first).expect("an AWSELB cookie");
    let home = first.instance();
    for _ in 0..6 {
        let reply = get(Some(cookie.clone())).await;
        assert_eq!(reply.instance(), home, "sticky across new TLS connections");
        assert!(
            cookie_of(&reply).is_none(),
            "a valid cookie is not reissued"
        );
    }

    // The sticky instance leaves service: the session moves, with a new cookie.
    let gone = backends.iter().position(|b| b.name() == home).unwrap();
    backends[gone].set_healthy(false);
    node.wait_state("sticky", &ids(&backends)[gone], HealthState::OutOfService)
        .await;
    let moved = get(Some(cookie.clone())).await;
    assert_ne!(moved.instance(), home);
    let new_cookie = cookie_of(&moved).expect("a replacement cookie");
    assert_ne!(new_cookie, cookie);
    assert_eq!(get(Some(new_cookie)).await.instance(), moved.instance());
}

/// An HTTP load balancer `name` with `AWSELB` stickiness on `node`, in front of `backends`.
async fn sticky_lb(
    node: &Node,
    name: &str,
    backends: &[fulcrum_testkit::Backend],
    port: u16,
) -> u16 {
    let lb_port = node.port();
    node.load_balancer(name, vec![http(lb_port, port)], backends)
        .await;
    node.change(|s| {
        s.create_policy(
            name,
            Policy {
                name: "lb-cookie".into(),
                kind: PolicyKind::LbCookieStickiness {
                    expiration_secs: None,
                },
            },
        )?;
        s.set_listener_policies(name, lb_port, vec!["lb-cookie".into()])
    })
    .await;
    lb_port
}

#[tokio::test]
async fn forged_stickiness_cookies_are_ignored_and_shared_keys_honour_each_other() {
    let key = fulcrum_proxy::StickinessKey::new(&[42; 32]);
    let shared = key.clone();
    let a = Node::start_with(move |c| c.stickiness_key = shared).await;
    let (backends, port) = a.backends(2).await;
    let a_port = sticky_lb(&a, "sticky", &backends, port).await;

    // What anyone can compute from the names alone (the value before it was a MAC), and
    // values of the right shape: none pins the client, which is balanced afresh and told so.
    let id = ids(&backends)[0].to_string();
    let mut naive = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    naive.update(format!("fulcrum-sticky\0sticky\0{id}").as_bytes());
    let naive = hex::encode(&naive.finish().as_ref()[..16]);
    for forged in [naive.as_str(), "00000000000000000000000000000000", "x"] {
        let cookie = format!("AWSELB={forged}");
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let reply = http_get(a.addr(a_port), "/", &[("cookie", &cookie)])
                .await
                .unwrap();
            assert_eq!(reply.status, 200, "{}", reply.describe());
            assert!(cookie_of(&reply).is_some(), "no fresh cookie for {forged}");
            seen.insert(reply.instance());
        }
        assert_eq!(
            seen.len(),
            2,
            "a forged cookie ({forged}) pinned the client"
        );
    }

    // A cookie issued by one node is honoured by another with the same key (a fleet), and by
    // none with another key.
    let first = http_get(a.addr(a_port), "/", &[]).await.unwrap();
    let cookie = cookie_of(&first).unwrap();
    let home = first.instance();
    let other_key = fulcrum_proxy::StickinessKey::new(&[43; 32]);
    let b = Node::start_with(move |c| c.stickiness_key = key).await;
    let c = Node::start_with(move |c| c.stickiness_key = other_key).await;
    let b_port = sticky_lb(&b, "sticky", &backends, port).await;
    let c_port = sticky_lb(&c, "sticky", &backends, port).await;
    for _ in 0..4 {
        let reply = http_get(b.addr(b_port), "/", &[("cookie", &cookie)])
            .await
            .unwrap();
        assert_eq!(reply.instance(), home, "the other node ignored the cookie");
        assert!(cookie_of(&reply).is_none());
        let reply = http_get(c.addr(c_port), "/", &[("cookie", &cookie)])
            .await
            .unwrap();
        assert!(
            cookie_of(&reply).is_some(),
            "a node with another key took it"
        );
    }
}

#[tokio::test]
async fn app_cookie_stickiness_follows_the_application_cookie() {
    let node = Node::start().await;
    let (backends, port) = node.backends(3).await;
    let lb_port = node.port();
    node.load_balancer("app", vec![http(lb_port, port)], &backends)
        .await;
    node.change(|s| {
        s.create_policy(
            "app",
            Policy {
                name: "app-cookie".into(),
                kind: PolicyKind::AppCookieStickiness {
                    cookie_name: "SID".into(),
                },
            },
        )?;
        s.set_listener_policies("app", lb_port, vec!["app-cookie".into()])
    })
    .await;
    let addr = node.addr(lb_port);
    // No application cookie yet: no stickiness cookie either.
    let plain = http_get(addr, "/", &[]).await.unwrap();
    assert!(cookie_of(&plain).is_none());
    // The application starts a session; the balancer adds its cookie beside it.
    let login = http_get(addr, "/set-cookie/SID/abc", &[]).await.unwrap();
    let lb_cookie = cookie_of(&login).expect("AWSELB next to the application's cookie");
    let home = login.instance();
    let both = format!("SID=abc; {lb_cookie}");
    for _ in 0..6 {
        assert_eq!(
            http_get(addr, "/", &[("cookie", &both)])
                .await
                .unwrap()
                .instance(),
            home
        );
    }
    // Without the application cookie the session is over: plain round robin again.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        seen.insert(
            http_get(addr, "/", &[("cookie", &lb_cookie)])
                .await
                .unwrap()
                .instance(),
        );
    }
    assert!(seen.len() > 1, "{seen:?}");
}

/// Runs `clients` loops of requests until `stop`, counting successes and failures. Each
/// iteration makes a new TLS connection (so it sees the current certificate) and then sends a
/// few keep-alive requests on it.
fn load(
    node: &Node,
    lb_port: u16,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> (
    Vec<tokio::task::JoinHandle<()>>,
    Arc<AtomicU64>,
    Arc<AtomicU64>,
) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let tasks = (0..clients)
        .map(|_| {
            let (addr, config) = (node.addr(lb_port), node.tls_client(&[b"http/1.1"]));
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let mut conn = match Conn::https(addr, "load.test", config.clone()).await {
                        Ok(c) => c,
                        Err(e) => {
                            eprintln!("connect failed: {e}");
                            failed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    };
                    for _ in 0..5 {
                        match conn.get("/", &[]).await {
                            Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                            Ok(r) => {
                                eprintln!("bad reply: {}", r.describe());
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                            Err(e) => {
                                eprintln!("request failed: {e}");
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                }
            })
        })
        .collect();
    (tasks, ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_and_instance_changes_under_load_lose_nothing() {
    let node = Node::start().await;
    let mut certs = Vec::new();
    let mut ders = Vec::new();
    for i in 0..4 {
        let (body, key) = node.ca.issue(&["load.test"]);
        ders.push(fulcrum_testkit::certs_from_pem(&body)[0].to_vec());
        certs.push(node.upload(&format!("load-{i}"), body, key).await);
    }
    let (backends, port) = node.backends(3).await;
    let lb_port = node.port();
    node.load_balancer(
        "load",
        vec![https(lb_port, port, &[&certs[0]])],
        &backends[..2],
    )
    .await;
    // Deregistered instances finish their requests: connection draining, which ELB's API
    // leaves off.
    node.change(|s| {
        s.set_attributes(
            "load",
            fulcrum_model::Attributes {
                draining_enabled: true,
                ..fulcrum_model::Attributes::default()
            },
        )
    })
    .await;
    let all_ids = ids(&backends);

    let stop = Arc::new(AtomicBool::new(false));
    let (tasks, ok, failed) = load(&node, lb_port, 8, stop.clone());
    for i in 1..4 {
        // Rotate the certificate...
        node.change(|s| s.set_listener_certificate("load", lb_port, &certs[i]))
            .await;
        let conn = Conn::https(
            node.addr(lb_port),
            "load.test",
            node.tls_client(&[b"http/1.1"]),
        )
        .await
        .unwrap();
        assert_eq!(
            conn.peer_cert_der().unwrap(),
            &ders[i][..],
            "new handshakes get the new certificate"
        );
        // ...and move instances in and out.
        node.change(|s| s.register_instances("load", &all_ids[2..]))
            .await;
        node.wait_state("load", &all_ids[2], HealthState::InService)
            .await;
        node.change(|s| s.deregister_instances("load", &all_ids[i % 2..i % 2 + 1]))
            .await;
        node.change(|s| s.register_instances("load", &all_ids[i % 2..i % 2 + 1]))
            .await;
        node.wait_state("load", &all_ids[i % 2], HealthState::InService)
            .await;
        node.change(|s| s.deregister_instances("load", &all_ids[2..]))
            .await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 100, "the load ran ({ok} requests)");
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
}

#[tokio::test]
async fn adding_and_removing_listeners_leaves_other_connections_alone() {
    let node = Node::start().await;
    let (backends, port) = node.backends(1).await;
    let (a, b) = (node.port(), node.port());
    node.load_balancer("multi", vec![http(a, port)], &backends)
        .await;
    let mut conn = Conn::http(node.addr(a)).await.unwrap();
    assert_eq!(conn.get("/", &[]).await.unwrap().status, 200);

    node.change(|s| s.create_listeners("multi", vec![http(b, port)]))
        .await;
    assert_eq!(http_get(node.addr(b), "/", &[]).await.unwrap().status, 200);
    assert_eq!(
        conn.get("/", &[]).await.unwrap().status,
        200,
        "same connection still served"
    );

    node.change(|s| s.delete_listeners("multi", &[b])).await;
    assert!(
        http_get(node.addr(b), "/", &[]).await.is_err(),
        "the removed port is closed"
    );
    assert_eq!(
        conn.get("/", &[]).await.unwrap().status,
        200,
        "same connection still served"
    );
}

#[tokio::test]
async fn an_in_flight_request_finishes_when_its_instance_is_deregistered() {
    let node = Node::start().await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("drain", vec![http(lb_port, port)], &backends)
        .await;
    // Connection draining (off by default, as in ELB's API) lets the request finish.
    node.change(|s| {
        s.set_attributes(
            "drain",
            fulcrum_model::Attributes {
                draining_enabled: true,
                ..fulcrum_model::Attributes::default()
            },
        )
    })
    .await;
    let addr = node.addr(lb_port);
    let slow = tokio::spawn(async move { http_get(addr, "/delay/800", &[]).await.unwrap() });
    let b = backends[0].clone();
    fulcrum_testkit::eventually(
        "the request to reach the instance",
        Duration::from_secs(5),
        move || {
            let b = b.clone();
            async move { b.in_flight() == 1 }
        },
    )
    .await;
    node.change(|s| s.deregister_instances("drain", &ids(&backends)))
        .await;
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(http_get(addr, "/", &[]).await.unwrap().status, 503);
}

#[tokio::test]
async fn websocket_upgrades_and_streamed_bodies_pass_through() {
    let node = Node::start().await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("ws", vec![http(lb_port, port)], &backends)
        .await;

    let (reply, mut io) =
        fulcrum_testkit::http_upgrade(node.addr(lb_port), "/upgrade", "websocket")
            .await
            .unwrap();
    assert_eq!(reply.status, 101);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    io.write_all(b"ping through the balancer").await.unwrap();
    let mut buf = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping through the balancer");

    // 8 MiB each way, streamed: the echo starts before the request body ends.
    let mut conn = Conn::http(node.addr(lb_port)).await.unwrap();
    let req = http::Request::post("/echo")
        .body(fulcrum_testkit::RepeatBody::new(8 << 20))
        .unwrap();
    let reply = conn.request_body(req).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 8 << 20);
}

#[tokio::test]
async fn connection_draining_bounds_requests_to_a_deregistered_instance() {
    use fulcrum_model::Attributes;
    let node = Node::start().await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    node.load_balancer("bound", vec![http(lb_port, port)], &backends)
        .await;
    let addr = node.addr(lb_port);
    let in_flight = |n: u64| {
        let b = backends[0].clone();
        fulcrum_testkit::eventually(
            "requests at the instance",
            Duration::from_secs(5),
            move || {
                let b = b.clone();
                async move { b.in_flight() == n }
            },
        )
    };
    let ids = ids(&backends);

    // Draining for 1 s: a short request finishes, a long one is cut when the grace ends.
    node.change(|s| {
        s.set_attributes(
            "bound",
            Attributes {
                draining_enabled: true,
                draining_timeout_secs: 1,
                ..Attributes::default()
            },
        )
    })
    .await;
    let short = tokio::spawn(async move { http_get(addr, "/delay/400", &[]).await });
    let long = tokio::spawn(async move { http_get(addr, "/delay/4000", &[]).await });
    in_flight(2).await;
    let started = std::time::Instant::now();
    node.change(|s| s.deregister_instances("bound", &ids)).await;
    assert_eq!(short.await.unwrap().unwrap().status, 200);
    let cut = long.await.unwrap();
    assert!(
        cut.is_err() || cut.as_ref().unwrap().status == 502,
        "{cut:?}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(3500),
        "{took:?}"
    );

    // Without draining, requests to a departed instance end at once, as in ELB.
    node.change(|s| {
        s.set_attributes(
            "bound",
            Attributes {
                draining_enabled: false,
                ..Attributes::default()
            },
        )?;
        s.register_instances("bound", &ids)
    })
    .await;
    node.wait_state("bound", &ids[0], HealthState::InService)
        .await;
    let long = tokio::spawn(async move { http_get(addr, "/delay/4000", &[]).await });
    in_flight(1).await;
    let started = std::time::Instant::now();
    node.change(|s| s.deregister_instances("bound", &ids)).await;
    let cut = long.await.unwrap();
    assert!(
        cut.is_err() || cut.as_ref().unwrap().status == 502,
        "{cut:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
}
