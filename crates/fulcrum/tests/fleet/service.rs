//! One service on several nodes: a change made on one node serves on every node; racing writes
//! on two nodes lose nothing; etcd going away and coming back under traffic fails no request; a
//! node starts without etcd; a killed node leaves the fleet's view and comes back; a sticky
//! cookie of one node is honoured by the others; no secret is in etcd in plain text.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_elasticloadbalancing as elb;
use fulcrum_testkit::{client_tls_config, eventually, http_get, https_get, TestCa};

use super::common::{backends_on_one_port, wait_in_service};
use super::{free_port, http_lb, lb_with, listener, node, Fleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_and_load_balancer_made_on_one_node_serve_on_every_node() {
    let f = Fleet::start(3).await;
    let (backends, _) = backends_on_one_port(2).await;
    let ca = TestCa::new("fleet test CA");
    let (body, key) = ca.issue(&["www.fleet.test"]);
    let uploaded = f
        .iam(0)
        .upload_server_certificate()
        .server_certificate_name("www")
        .certificate_body(&body)
        .private_key(&key)
        .send()
        .await
        .unwrap();
    let arn = uploaded
        .server_certificate_metadata()
        .unwrap()
        .arn()
        .to_owned();
    let port = free_port();
    let https = listener("HTTPS", port, backends[0].addr().port(), Some(&arn));
    lb_with(&f, 0, "web", https, &backends).await;
    let elb0 = f.elb(0);
    elb0.create_lb_cookie_stickiness_policy()
        .load_balancer_name("web")
        .policy_name("sticky")
        .send()
        .await
        .unwrap();
    elb0.set_load_balancer_policies_of_listener()
        .load_balancer_name("web")
        .load_balancer_port(i32::from(port))
        .policy_names("sticky")
        .send()
        .await
        .unwrap();

    // Every node serves the certificate uploaded on the first one.
    let tls = client_tls_config(&ca.cert_pem(), &[b"http/1.1"]);
    for i in 0..3 {
        let addr = f.listener(i, port);
        let tls = tls.clone();
        eventually(
            &format!("HTTPS through node {i}"),
            Duration::from_secs(20),
            || {
                let tls = tls.clone();
                async move {
                    https_get(addr, "www.fleet.test", tls, "/", &[])
                        .await
                        .is_ok_and(|r| r.status == 200)
                }
            },
        )
        .await;
    }
    f.wait_converged(2, 3).await;
    // Every node's checks see both instances in service (a sticky instance that is not would
    // rightly be replaced).
    let fleet = &f;
    eventually(
        "both instances in service on every node",
        Duration::from_secs(20),
        || async move {
            fleet
                .describe_fleet(0)
                .await
                .matches("<State>InService</State>")
                .count()
                == 6
        },
    )
    .await;

    // A sticky session begun on one node stays on its instance through the others.
    let first = https_get(f.listener(0, port), "www.fleet.test", tls.clone(), "/", &[])
        .await
        .unwrap();
    let cookie = first
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("AWSELB="))
        .expect("an AWSELB cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let instance = first.instance();
    for i in [1, 2, 1, 2] {
        let r = https_get(
            f.listener(i, port),
            "www.fleet.test",
            tls.clone(),
            "/",
            &[("cookie", &cookie)],
        )
        .await
        .unwrap();
        assert_eq!(r.instance(), instance, "node {i} broke the session");
    }

    // Every node answers for the fleet's health, and names every node.
    let health = f
        .elb(1)
        .describe_instance_health()
        .load_balancer_name("web")
        .send()
        .await
        .unwrap();
    let states = health.instance_states();
    assert_eq!(states.len(), 2);
    assert!(
        states.iter().all(|s| s.state() == Some("InService")),
        "{states:?}"
    );
    let xml = f.describe_fleet(1).await;
    for n in &f.nodes {
        assert!(xml.contains(&n.bind.unwrap().to_string()), "{xml}");
    }
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_fulcrum"));
    cli.args(["fleet", "status", "--endpoint"])
        .arg(format!("http://{}", f.api(2)))
        .args(["--access-key-id", &f.key.0, "--secret-access-key", &f.key.1])
        .env_remove("FULCRUM_ENDPOINT")
        .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || cli.output())
        .await
        .unwrap()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{status}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status.matches(" yes ").count(), 3, "{status}");

    // No secret in etcd in plain text: read every key.
    let dump = f.etcd.dump().await;
    assert!(dump.len() > 5);
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    for (name, value) in &dump {
        let text = String::from_utf8_lossy(value);
        assert!(
            !text.contains(&key_body[..40]),
            "{name} holds the private key"
        );
        assert!(!text.contains("PRIVATE KEY"), "{name} holds a PEM key");
        assert!(!text.contains(&f.key.1), "{name} holds the admin secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conflicting_writes_on_two_nodes_lose_nothing() {
    let f = Fleet::start(3).await;
    let (a, b) = (f.elb(0), f.elb(1));
    let base = 20_000 + (std::process::id() % 20_000) as u16;
    let make = |elb: elb::Client, name: String, port: u16| {
        let l = listener("HTTP", port, 80, None);
        async move {
            elb.create_load_balancer()
                .load_balancer_name(name)
                .listeners(l)
                .availability_zones("us-east-1a")
                .send()
                .await
        }
    };
    let mut tasks = Vec::new();
    for i in 0..6u16 {
        tasks.push(tokio::spawn(make(a.clone(), format!("a{i}"), base + i)));
        tasks.push(tokio::spawn(make(
            b.clone(),
            format!("b{i}"),
            base + 100 + i,
        )));
    }
    // The same name, two configurations, at once on two nodes.
    tasks.push(tokio::spawn(make(
        a.clone(),
        "contested".into(),
        base + 200,
    )));
    tasks.push(tokio::spawn(make(
        b.clone(),
        "contested".into(),
        base + 201,
    )));
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failures.push(
                e.into_service_error()
                    .meta()
                    .code()
                    .unwrap_or("")
                    .to_owned(),
            );
        }
    }
    assert_eq!(failures, ["DuplicateLoadBalancerName"]);
    f.wait_converged(2, 3).await;
    let described = f.elb(2).describe_load_balancers().send().await.unwrap();
    let mut names: Vec<_> = described
        .load_balancer_descriptions()
        .iter()
        .map(|d| d.load_balancer_name().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 13, "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_going_away_and_back_under_traffic_fails_no_request() {
    let mut f = Fleet::start(2).await;
    let (backends, _) = backends_on_one_port(1).await;
    let port = free_port();
    http_lb(&f, 0, "web", port, &backends).await;
    for i in 0..2 {
        wait_in_service(f.listener(i, port)).await;
    }

    // Traffic through both nodes for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for i in 0..2 {
        let (addr, stop, ok, failed) = (
            f.listener(i, port),
            stop.clone(),
            ok.clone(),
            failed.clone(),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match http_get(addr, "/", &[]).await {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }

    f.etcd.stop();
    for i in 0..2 {
        let node = &mut f.nodes[i];
        let reply = node
            .wait_healthz_until("degraded", |r| r.text().starts_with("degraded"))
            .await;
        assert_eq!(reply.status, 200, "degraded is not down");
    }
    let refused = f
        .elb(0)
        .delete_load_balancer()
        .load_balancer_name("web")
        .send()
        .await
        .unwrap_err();
    let refused = refused.into_service_error();
    assert_eq!(
        refused.meta().code(),
        Some("ServiceUnavailable"),
        "{refused:?}"
    );
    assert!(
        refused
            .meta()
            .message()
            .unwrap_or("")
            .contains("unreachable"),
        "{refused:?}"
    );

    f.etcd.resume();
    for i in 0..2 {
        f.nodes[i]
            .wait_healthz_until("ok again", |r| r.text().starts_with("ok"))
            .await;
    }
    let port2 = free_port();
    http_lb(&f, 1, "after", port2, &backends).await;
    wait_in_service(f.listener(0, port2)).await;

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert!(ok.load(Ordering::Relaxed) > 20);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed while etcd was away"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_start_without_etcd_and_come_back_after_a_kill() {
    let mut f = Fleet::start(3).await;
    let (backends, _) = backends_on_one_port(1).await;
    let port = free_port();
    http_lb(&f, 0, "web", port, &backends).await;
    for i in 0..3 {
        wait_in_service(f.listener(i, port)).await;
    }
    f.wait_converged(0, 3).await;

    // A node killed outright leaves the fleet's view when its lease runs out...
    let bind = f.nodes[2].bind.unwrap();
    let api = f.nodes[2].api.unwrap();
    let killed = f.nodes.pop().unwrap();
    killed.signal(libc::SIGKILL);
    drop(killed);
    f.wait_converged(0, 2).await;
    // ... and is back, converged, when it restarts on its data dir.
    let mut again = node(&f.etcd, f.dirs[2].path());
    again.bind = bind;
    again.api = api;
    f.nodes.push(again.spawn_healthy().await);
    f.wait_converged(0, 3).await;
    wait_in_service(f.listener(2, port)).await;

    // A node that starts while etcd is down serves from its local copy.
    let mut stopped = f.nodes.remove(1);
    stopped.stop().await;
    let (bind, api) = (stopped.bind.unwrap(), stopped.api.unwrap());
    drop(stopped);
    f.etcd.stop();
    let mut restarted = node(&f.etcd, f.dirs[1].path());
    restarted.bind = bind;
    restarted.api = api;
    let mut restarted = restarted.spawn();
    let health = restarted
        .wait_healthz_until("serving, degraded", |r| r.status == 200)
        .await;
    assert!(health.text().starts_with("degraded"), "{}", health.text());
    wait_in_service(SocketAddr::new(bind, port)).await;
    f.etcd.resume();
    restarted
        .wait_healthz_until("ok once etcd is back", |r| r.text().starts_with("ok"))
        .await;
}
