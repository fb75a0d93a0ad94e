//! What a node does over time and under load: ELB's idle timeout exactly (HTTP/1.1 keep-alive,
//! HTTP/2 with the balancer's own pings, upgraded connections, long uploads and downloads), the
//! header read timeout, connection and per-instance limits, health carried over a restart, and
//! the addresses it binds.
//!
//! The timeouts here are longer than the header read timeout (1 s) and the HTTP/2 ping interval
//! (1 s) on purpose: with every timer at 1 s, one timer firing for another hides the bugs.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use fulcrum_store::{MasterKey, Store};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use fulcrum_model::{Attributes, HealthCheck, HealthTarget, LbName};
use fulcrum_proxy::{DataPlane, DataPlaneConfig, HealthState};
use fulcrum_testkit::{http_get, Conn};
use http_body_util::StreamBody;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The load balancer's idle timeout in these tests.
const IDLE: Duration = Duration::from_secs(3);
/// The watchdog looks four times per period: it closes within a quarter period of the deadline
/// (plus scheduling).
const LATE: Duration = Duration::from_millis(1500);

fn short_timers(c: &mut DataPlaneConfig) {
    c.header_read_timeout = Duration::from_secs(1);
    c.http2_ping_interval = Duration::from_secs(1);
}

/// A node with an HTTP and an HTTPS listener in front of one instance, idle timeout `IDLE`.
struct Site {
    node: Node,
    backends: Vec<fulcrum_testkit::Backend>,
    http: SocketAddr,
    https: SocketAddr,
}

const HOST: &str = "timeouts.test";

impl Site {
    async fn start(tune: impl FnOnce(&mut DataPlaneConfig)) -> Site {
        let node = Node::start_with(tune).await;
        let cert = node.certificate("timeouts", &[HOST]).await;
        let (backends, port) = node.backends(1).await;
        let (http_port, https_port) = (node.port(), node.port());
        node.load_balancer(
            "timeouts",
            vec![http(http_port, port), https(https_port, port, &[&cert])],
            &backends,
        )
        .await;
        node.change(|s| {
            s.set_attributes(
                "timeouts",
                Attributes {
                    idle_timeout_secs: IDLE.as_secs() as u32,
                    ..Attributes::default()
                },
            )
        })
        .await;
        Site {
            http: node.addr(http_port),
            https: node.addr(https_port),
            node,
            backends,
        }
    }

    async fn conn(&self, alpn: &[u8]) -> Conn {
        Conn::https(self.https, HOST, self.node.tls_client(&[alpn]))
            .await
            .unwrap()
    }
}

/// Asserts that a connection idle since `since` closed at the idle timeout: not before, and not
/// much after.
fn assert_closed_at_idle_timeout(what: &str, since: Instant) {
    let took = since.elapsed();
    assert!(
        took >= IDLE,
        "{what}: closed after {took:?}, before the idle timeout {IDLE:?}"
    );
    assert!(
        took <= IDLE + LATE,
        "{what}: closed only after {took:?} (idle timeout {IDLE:?})"
    );
}

/// Waits (bounded) for the peer to close `stream`; true if it did.
async fn eof<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` from a raw stream.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("response within 5 s")
            .unwrap();
        assert!(n > 0, "closed before a full response");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .expect("content-length");
            if got.len() >= head_end + 4 + len {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn http1_keep_alive_connections_idle_out_at_the_idle_timeout_not_the_header_read_timeout() {
    let site = Site::start(short_timers).await;
    let mut tcp = TcpStream::connect(site.http).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: timeouts.test\r\n\r\n")
        .await
        .unwrap();
    let reply = read_response(&mut tcp).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let since = Instant::now();
    assert!(eof(&mut tcp, IDLE + LATE * 2).await, "never closed");
    assert_closed_at_idle_timeout("HTTP/1.1 keep-alive", since);

    // The same over TLS, with a second request after a pause longer than the header read
    // timeout: the connection is still there for it.
    let mut conn = site.conn(b"http/1.1").await;
    assert_eq!(conn.get("/", &[]).await.unwrap().status, 200);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(conn.get("/", &[]).await.unwrap().status, 200);
    let since = Instant::now();
    tokio::time::timeout(IDLE + LATE * 2, conn.closed())
        .await
        .expect("never closed");
    assert_closed_at_idle_timeout("HTTPS keep-alive", since);
}

#[tokio::test]
async fn http2_connections_idle_out_although_the_balancer_pings_them() {
    let site = Site::start(short_timers).await;
    let mut conn = site.conn(b"h2").await;
    assert!(conn.is_h2());
    assert_eq!(conn.get("/", &[]).await.unwrap().status, 200);
    let since = Instant::now();
    // Pings every second, answered by the client: they must not keep the connection open.
    tokio::time::timeout(IDLE + LATE * 2, conn.closed())
        .await
        .expect("an idle HTTP/2 connection was never closed");
    assert_closed_at_idle_timeout("HTTP/2", since);
}

#[tokio::test]
async fn silent_new_connections_get_the_idle_timeout_and_half_sent_heads_the_header_read_timeout() {
    let site = Site::start(short_timers).await;
    let silent = async {
        let mut tcp = TcpStream::connect(site.http).await.unwrap();
        let since = Instant::now();
        assert!(eof(&mut tcp, IDLE + LATE * 2).await, "never closed");
        assert_closed_at_idle_timeout("a silent connection", since);
    };
    let half_head = async {
        let mut tcp = TcpStream::connect(site.http).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: timeouts.test\r\n")
            .await
            .unwrap();
        let since = Instant::now();
        assert!(eof(&mut tcp, Duration::from_secs(3)).await, "never closed");
        let took = since.elapsed();
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
            "a half-sent head was closed after {took:?}, header read timeout 1 s"
        );
    };
    // A keep-alive request whose head starts after a quiet pause: timed from its first byte.
    let second_head = async {
        let mut tcp = TcpStream::connect(site.http).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: timeouts.test\r\n\r\n")
            .await
            .unwrap();
        read_response(&mut tcp).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tcp.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let since = Instant::now();
        assert!(eof(&mut tcp, Duration::from_secs(3)).await, "never closed");
        let took = since.elapsed();
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
            "the second head was closed after {took:?}"
        );
    };
    tokio::join!(silent, half_head, second_head);
}

#[tokio::test]
async fn upgraded_connections_idle_out_and_moving_ones_stay() {
    let site = Site::start(short_timers).await;
    let (reply, mut upgraded) = fulcrum_testkit::http_upgrade(site.http, "/upgrade", "echo")
        .await
        .unwrap();
    assert_eq!(reply.status, 101);
    // Bytes every second for longer than the idle timeout: the connection stays.
    for i in 0..5u8 {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        upgraded.write_all(&[b'a' + i]).await.unwrap();
        let mut b = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(2), upgraded.read_exact(&mut b))
            .await
            .expect("echo within 2 s")
            .unwrap();
        assert_eq!(b[0], b'a' + i);
    }
    // Then silence: closed at the idle timeout.
    let since = Instant::now();
    assert!(eof(&mut upgraded, IDLE + LATE * 2).await, "never closed");
    assert_closed_at_idle_timeout("an upgraded connection", since);
}

/// A request body of `chunks` chunks, one every `every`.
fn slow_body(
    chunks: usize,
    every: Duration,
) -> StreamBody<
    impl futures_util::Stream<Item = Result<http_body::Frame<Bytes>, std::io::Error>> + Send + Sync,
> {
    let stream = futures_util::stream::unfold(0usize, move |i| async move {
        if i == chunks {
            return None;
        }
        tokio::time::sleep(every).await;
        Some((
            Ok(http_body::Frame::data(Bytes::from(format!("chunk {i}\n")))),
            i + 1,
        ))
    });
    StreamBody::new(stream)
}

#[tokio::test]
async fn uploads_and_downloads_that_keep_moving_outlast_the_idle_timeout() {
    let site = Site::start(short_timers).await;
    let chunks = 6;
    let every = Duration::from_millis(1000);
    for alpn in [&b"http/1.1"[..], b"h2"] {
        // An upload of 6 s through a 3 s idle timeout.
        let mut conn = site.conn(alpn).await;
        let req = http::Request::post("/echo")
            .body(slow_body(chunks, every))
            .unwrap();
        let started = Instant::now();
        let reply = conn.request_body(req).await.unwrap();
        assert_eq!(reply.status, 200, "{alpn:?}: {}", reply.describe());
        let want: String = (0..chunks).map(|i| format!("chunk {i}\n")).collect();
        assert_eq!(reply.text(), want, "{alpn:?}");
        assert!(started.elapsed() > IDLE, "the upload was not slow");

        // A download of 6 s.
        let reply = conn.get("/drip/6/1000", &[]).await.unwrap();
        assert_eq!(reply.status, 200, "{alpn:?}: {}", reply.describe());
        assert_eq!(reply.body.len(), 6 * 16, "{alpn:?}");
    }
    // The same through a TCP-level client, without TLS.
    let mut conn = Conn::http(site.http).await.unwrap();
    let req = http::Request::post("/echo")
        .body(slow_body(chunks, every))
        .unwrap();
    assert_eq!(conn.request_body(req).await.unwrap().status, 200);
}

#[tokio::test]
async fn an_instance_that_sends_nothing_gets_a_504_at_the_idle_timeout() {
    let site = Site::start(short_timers).await;
    let mut conn = site.conn(b"h2").await;
    let started = Instant::now();
    let reply = conn.get("/delay/20000", &[]).await.unwrap();
    let took = started.elapsed();
    assert_eq!(reply.status, 504, "{}", reply.describe());
    assert!(took >= IDLE && took <= IDLE + LATE, "504 after {took:?}");
}

// ---------------------------------------------------------------------------------------------
// Limits.

#[tokio::test]
async fn over_the_listener_connection_limit_new_connections_are_refused_and_old_ones_served() {
    let site = Site::start(|c| c.limits.max_listener_connections = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(Conn::http(site.http).await.unwrap());
    }
    for conn in &mut open {
        assert_eq!(conn.get("/", &[]).await.unwrap().status, 200);
    }
    // The fourth is reset at once, without a request reaching an instance.
    let before = site.backends[0].requests();
    let started = Instant::now();
    let mut tcp = TcpStream::connect(site.http).await.unwrap();
    let _ = tcp
        .write_all(b"GET / HTTP/1.1\r\nHost: timeouts.test\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf))
        .await
        .expect("the refused connection was left hanging");
    assert!(
        matches!(got, Ok(0) | Err(_)),
        "an over-limit connection got an answer: {got:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(site.backends[0].requests(), before);
    // The connections already open keep being served, quickly.
    for conn in &mut open {
        let started = Instant::now();
        assert_eq!(conn.get("/", &[]).await.unwrap().status, 200);
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    let (_, refused) = site.node.dp.connection_counts();
    assert!(refused >= 1, "refused connections not counted");
    // The other listener has its own limit.
    let reply = site.conn(b"http/1.1").await.get("/", &[]).await.unwrap();
    assert_eq!(reply.status, 200);
    // Once one closes, a new connection is accepted again.
    drop(open.pop());
    fulcrum_testkit::eventually("a slot to free up", Duration::from_secs(5), || async {
        http_get(site.http, "/", &[])
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
}

#[tokio::test]
async fn a_busy_instance_queues_requests_then_spills_over_with_a_fast_503() {
    let site = Site::start(|c| {
        c.limits.max_instance_connections = 2;
        c.limits.instance_queue = 1;
        c.limits.instance_queue_timeout = Duration::from_secs(10);
    })
    .await;
    let lb = LbName::parse("timeouts").unwrap();
    // Two slow requests take both turns with the instance.
    let slow = |path: &'static str| {
        let addr = site.http;
        tokio::spawn(async move { http_get(addr, path, &[]).await.map(|r| r.status) })
    };
    let a = slow("/delay/1500");
    let b = slow("/delay/1500");
    let backend = site.backends[0].clone();
    fulcrum_testkit::eventually(
        "two requests at the instance",
        Duration::from_secs(5),
        || {
            let backend = backend.clone();
            async move { backend.in_flight() == 2 }
        },
    )
    .await;
    // A third waits in the queue...
    let queued = slow("/");
    let dp = site.node.dp.clone();
    let lb2 = lb.clone();
    fulcrum_testkit::eventually(
        "a request in the surge queue",
        Duration::from_secs(5),
        || {
            let (dp, lb) = (dp.clone(), lb2.clone());
            async move { dp.surge_counts(&lb).0 == 1 }
        },
    )
    .await;
    // ...and a fourth finds the queue full: 503 at once.
    let started = Instant::now();
    let reply = http_get(site.http, "/", &[]).await.unwrap();
    assert_eq!(reply.status, 503, "{}", reply.describe());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "spillover took {:?}",
        started.elapsed()
    );
    assert_eq!(site.node.dp.surge_counts(&lb), (1, 1));
    // The queued request is served once a turn frees up; the slow ones finish.
    assert_eq!(queued.await.unwrap().unwrap(), 200);
    assert_eq!(a.await.unwrap().unwrap(), 200);
    assert_eq!(b.await.unwrap().unwrap(), 200);
    assert_eq!(site.node.dp.surge_counts(&lb), (0, 1));
}

// ---------------------------------------------------------------------------------------------
// Restarts.

/// ELB's own default health check: 10 passes 30 s apart to come in, 2 failures to go out.
fn elb_default_check(port: u16) -> HealthCheck {
    HealthCheck {
        target: HealthTarget::Http {
            port,
            path: "/health".into(),
        },
        interval_secs: 30,
        timeout_secs: 5,
        unhealthy_threshold: 2,
        healthy_threshold: 10,
    }
}

#[tokio::test]
async fn health_is_carried_over_a_restart_and_the_first_check_decides() {
    let dir = tempfile::tempdir().unwrap();
    let health_file = dir.path().join("health.json");
    let file = health_file.clone();
    let node = Node::start_with(move |c| {
        c.health_check_time_scale = 1;
        c.health_file = Some(file);
    })
    .await;
    let (backends, port) = node.backends(1).await;
    let lb_port = node.port();
    let id = ids(&backends).remove(0);
    let started = Instant::now();
    node.change(|s| {
        s.create_load_balancer("restart", vec![http(lb_port, port)], 0)?;
        s.configure_health_check("restart", elb_default_check(port))?;
        s.register_instances("restart", std::slice::from_ref(&id))
    })
    .await;
    // Registered on a running node: ELB's registration in progress (10 x 30 s).
    assert_eq!(
        node.health("restart", &id).unwrap().state,
        HealthState::OutOfService
    );
    assert!(
        node.dp.waiting_for().is_empty(),
        "{:?}",
        node.dp.waiting_for()
    );

    // A node starting with no known health: one passing check, within about a second.
    node.dp.shutdown(Duration::ZERO).await;
    std::fs::remove_file(&health_file).ok();
    let config = |file: &std::path::Path| DataPlaneConfig {
        bind: vec![node.bind],
        health_check_time_scale: 1,
        health_file: Some(file.to_owned()),
        ..DataPlaneConfig::default()
    };
    let second = DataPlane::new(config(&health_file)).unwrap();
    second.follow(node.store.watch());
    let lb = LbName::parse("restart").unwrap();
    fulcrum_testkit::eventually("InService after one check", Duration::from_secs(3), || {
        let (dp, lb, id) = (second.clone(), lb.clone(), id.clone());
        async move {
            dp.instance_health(&lb, &id)
                .is_some_and(|h| h.state == HealthState::InService)
        }
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        second.waiting_for().is_empty(),
        "{:?}",
        second.waiting_for()
    );
    assert_eq!(
        http_get(node.addr(lb_port), "/", &[]).await.unwrap().status,
        200
    );

    // Restarted with the instance's health endpoint now failing: the saved InService is used
    // from the first request, then the first check decides.
    second.shutdown(Duration::ZERO).await;
    let saved = std::fs::read_to_string(&health_file).unwrap();
    assert!(saved.contains("InService"), "{saved}");
    backends[0].set_healthy(false);
    let third = DataPlane::new(config(&health_file)).unwrap();
    assert!(!third.waiting_for().is_empty(), "ready before any state");
    third.follow(node.store.watch());
    fulcrum_testkit::eventually("the state applied", Duration::from_secs(3), || {
        let dp = third.clone();
        async move { dp.is_ready() }
    })
    .await;
    assert!(third.waiting_for().is_empty(), "{:?}", third.waiting_for());
    assert_eq!(
        third.instance_health(&lb, &id).unwrap().state,
        HealthState::InService
    );
    let reply = http_get(node.addr(lb_port), "/", &[]).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.describe());
    fulcrum_testkit::eventually(
        "OutOfService after one failed check",
        Duration::from_secs(3),
        || {
            let (dp, lb, id) = (third.clone(), lb.clone(), id.clone());
            async move {
                dp.instance_health(&lb, &id)
                    .is_some_and(|h| h.state == HealthState::OutOfService)
            }
        },
    )
    .await;
    third.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_starting_node_is_not_ready_until_its_first_checks_end() {
    let black_hole = fulcrum_testkit::BlackHole::start().await;
    let node = Node::start_with(|c| c.health_check_time_scale = 1).await;
    let lb_port = node.port();
    // The instance answers health checks never: the first check ends at its 5 s timeout.
    let id = fulcrum_model::InstanceId::parse(&black_hole.addr().ip().to_string()).unwrap();
    node.change(|s| {
        s.create_load_balancer("waiting", vec![http(lb_port, black_hole.addr().port())], 0)?;
        s.configure_health_check("waiting", elb_default_check(black_hole.addr().port()))?;
        s.register_instances("waiting", std::slice::from_ref(&id))
    })
    .await;
    node.dp.shutdown(Duration::ZERO).await;
    let restarted = DataPlane::new(DataPlaneConfig {
        bind: vec![node.bind],
        health_check_time_scale: 1,
        ..DataPlaneConfig::default()
    })
    .unwrap();
    restarted.follow(node.store.watch());
    fulcrum_testkit::eventually("the state applied", Duration::from_secs(3), || {
        let dp = restarted.clone();
        async move { dp.is_ready() }
    })
    .await;
    let waiting = restarted.waiting_for();
    assert!(
        waiting.iter().any(|w| w.contains("health of 1 instance")),
        "{waiting:?}"
    );
    fulcrum_testkit::eventually("the first check to end", Duration::from_secs(10), || {
        let dp = restarted.clone();
        async move { dp.waiting_for().is_empty() }
    })
    .await;
    let lb = LbName::parse("waiting").unwrap();
    assert_eq!(
        restarted.instance_health(&lb, &id).unwrap().state,
        HealthState::OutOfService
    );
    restarted.shutdown(Duration::ZERO).await;
}

// ---------------------------------------------------------------------------------------------
// Addresses.

/// A store of its own, for a data plane that binds addresses no other node of this process uses.
fn own_store() -> (Arc<Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with_key(dir.path(), MasterKey::generate()).unwrap();
    (Arc::new(store), dir)
}

/// A port free on both [::] and 0.0.0.0 right now.
fn free_dual_stack_port() -> u16 {
    let socket = std::net::TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
    socket.local_addr().unwrap().port()
}

#[tokio::test]
async fn dual_stack_binds_show_ipv4_clients_as_plain_ipv4() {
    let node = Node::start().await;
    let (backends, port) = node.backends(1).await;
    let ids = ids(&backends);
    let lb_port = free_dual_stack_port();
    let (store, _dir) = own_store();
    let dp = DataPlane::new(DataPlaneConfig {
        bind: vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)],
        health_check_time_scale: TIME_SCALE,
        ..DataPlaneConfig::default()
    })
    .unwrap();
    dp.follow(store.watch());
    store
        .update(|s| {
            s.create_load_balancer("dual", vec![http(lb_port, port)], 0)?;
            s.configure_health_check("dual", fast_check(&format!("HTTP:{port}/health")))?;
            s.register_instances("dual", &ids)
        })
        .unwrap();
    let lb = LbName::parse("dual").unwrap();
    fulcrum_testkit::eventually("InService", Duration::from_secs(10), || {
        let (dp, lb, id) = (dp.clone(), lb.clone(), ids[0].clone());
        async move {
            dp.instance_health(&lb, &id)
                .is_some_and(|h| h.state == HealthState::InService)
        }
    })
    .await;
    let v4 = http_get(SocketAddr::from(([127, 0, 0, 1], lb_port)), "/", &[])
        .await
        .unwrap();
    assert_eq!(v4.status, 200, "{}", v4.describe());
    assert_eq!(v4.header("x-forwarded-for"), Some("127.0.0.1"));
    let v6 = http_get(SocketAddr::from((Ipv6Addr::LOCALHOST, lb_port)), "/", &[])
        .await
        .unwrap();
    assert_eq!(v6.header("x-forwarded-for"), Some("::1"));
    dp.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn several_bind_addresses_serve_the_same_listener() {
    let first = Node::start().await;
    let (backends, port) = first.backends(1).await;
    let lb_port = free_dual_stack_port();
    let binds = vec![first.bind, IpAddr::V6(Ipv6Addr::LOCALHOST)];
    let dp = DataPlane::new(DataPlaneConfig {
        bind: binds.clone(),
        health_check_time_scale: TIME_SCALE,
        ..DataPlaneConfig::default()
    })
    .unwrap();
    let (store, _dir) = own_store();
    dp.follow(store.watch());
    let ids = ids(&backends);
    store
        .update(|s| {
            s.create_load_balancer("multi", vec![http(lb_port, port)], 0)?;
            s.configure_health_check("multi", fast_check(&format!("HTTP:{port}/health")))?;
            s.register_instances("multi", &ids)
        })
        .unwrap();
    for bind in binds {
        let addr = SocketAddr::new(bind, lb_port);
        fulcrum_testkit::eventually(
            &format!("{addr} to serve"),
            Duration::from_secs(10),
            || async move {
                http_get(addr, "/", &[])
                    .await
                    .is_ok_and(|r| r.status == 200)
            },
        )
        .await;
    }
    dp.shutdown(Duration::ZERO).await;
}
