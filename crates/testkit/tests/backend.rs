//! Self-tests of the plain-HTTP backend, the black hole, the clients and `eventually`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fulcrum_testkit::{
    closed_port, eventually, http_get, http_upgrade, raw_exchange, Backend, BlackHole, Conn,
};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

#[tokio::test]
async fn reports_request_as_json() {
    let backend = Backend::start("a").await;
    let reply = http_get(
        backend.addr(),
        "/some/path?x=1",
        &[
            ("X-Test", "one"),
            ("x-test", "two"),
            ("X-Forwarded-For", "1.2.3.4"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.response_header("content-type"),
        Some("application/json")
    );
    assert_eq!(reply.response_header("x-instance"), Some("a"));
    assert_eq!(reply.instance(), "a");
    let json = reply.json();
    assert_eq!(json["method"], "GET");
    assert_eq!(json["path"], "/some/path");
    assert_eq!(json["query"], "x=1");
    assert_eq!(reply.header("X-Test"), Some("one, two"));
    assert_eq!(reply.header("x-forwarded-for"), Some("1.2.3.4"));
    assert_eq!(
        reply.header("host"),
        Some(backend.addr().to_string().as_str())
    );
    assert_eq!(backend.requests(), 1);
    assert_eq!(backend.in_flight(), 0);
    assert_eq!(backend.connections(), 1);
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let backend = Backend::start("ka").await;
    let mut conn = Conn::http(backend.addr()).await.unwrap();
    for _ in 0..3 {
        assert_eq!(conn.get("/", &[]).await.unwrap().instance(), "ka");
    }
    let posted = conn.post("/form", &[], "abc").await.unwrap();
    assert_eq!(posted.json()["method"], "POST");
    assert_eq!(posted.json()["body_len"], 3);
    assert_eq!(backend.requests(), 4);
    assert_eq!(backend.connections(), 1);
}

#[tokio::test]
async fn h2c_prior_knowledge_is_accepted() {
    let backend = Backend::start("h2c").await;
    let mut conn = Conn::h2c(backend.addr()).await.unwrap();
    assert!(conn.is_h2());
    for _ in 0..2 {
        let reply = conn.get("/p", &[("x-b", "2")]).await.unwrap();
        assert_eq!(reply.version, http::Version::HTTP_2);
        assert_eq!(reply.header("x-b"), Some("2"));
        assert_eq!(reply.json()["version"], "HTTP/2.0");
    }
    assert_eq!(backend.connections(), 1);
}

#[tokio::test]
async fn delay_counts_as_in_flight() {
    let backend = Backend::start("slow").await;
    let addr = backend.addr();
    let started = Instant::now();
    let request = tokio::spawn(async move { http_get(addr, "/delay/300", &[]).await });
    eventually("request in flight", Duration::from_secs(5), || async {
        backend.in_flight() == 1
    })
    .await;
    let reply = request.await.unwrap().unwrap();
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(backend.in_flight(), 0);
    assert_eq!(backend.requests(), 1);
}

#[tokio::test]
async fn status_cookie_bytes_and_health() {
    let backend = Backend::start("b").await;
    let addr = backend.addr();
    assert_eq!(
        http_get(addr, "/status/503", &[]).await.unwrap().status,
        503
    );
    let no_content = http_get(addr, "/status/204", &[]).await.unwrap();
    assert_eq!((no_content.status, no_content.body.len()), (204, 0));
    assert_eq!(no_content.instance(), "b");

    let cookie = http_get(addr, "/set-cookie/app/xyz", &[]).await.unwrap();
    assert_eq!(
        cookie.response_header("set-cookie"),
        Some("app=xyz; Path=/")
    );

    let bytes = http_get(addr, "/bytes/100000", &[]).await.unwrap();
    assert_eq!(bytes.body.len(), 100_000);
    assert!(bytes.body.iter().all(|&b| b == b'x'));
    assert_eq!(bytes.response_header("content-length"), Some("100000"));

    let requests = backend.requests();
    let health = http_get(addr, "/health", &[]).await.unwrap();
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
    backend.set_healthy(false);
    assert_eq!(http_get(addr, "/health", &[]).await.unwrap().status, 503);
    backend.set_healthy(true);
    assert_eq!(http_get(addr, "/health", &[]).await.unwrap().status, 200);
    assert_eq!(backend.requests(), requests, "/health is not counted");
}

#[tokio::test]
async fn close_drops_the_connection() {
    let backend = Backend::start("c").await;
    let raw = raw_exchange(
        backend.addr(),
        b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(raw.is_empty(), "got {:?}", String::from_utf8_lossy(&raw));
    assert!(http_get(backend.addr(), "/close", &[]).await.is_err());
    assert_eq!(backend.in_flight(), 0);
}

#[tokio::test]
async fn raw_exchange_reads_an_answer() {
    let backend = Backend::start("raw").await;
    let raw = raw_exchange(
        backend.addr(),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\"instance\":\"raw\""), "{text}");
}

/// A request body fed chunk by chunk from a channel.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn echo_streams_without_buffering() {
    let backend = Backend::start("echo").await;
    let tcp = tokio::net::TcpStream::connect(backend.addr())
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (tx, rx) = mpsc::channel(4);
    let req = http::Request::post("/echo")
        .header("host", "x")
        .body(ChannelBody(rx))
        .unwrap();
    tx.send(Bytes::from_static(b"first ")).await.unwrap();
    let limit = Duration::from_secs(5);
    // The head and the first chunk arrive while the request body is still open.
    let resp = tokio::time::timeout(limit, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = tokio::time::timeout(limit, body.frame()).await.unwrap();
    let first = first.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first ");
    assert_eq!(backend.in_flight(), 1);
    tx.send(Bytes::from_static(b"second")).await.unwrap();
    drop(tx);
    let rest = tokio::time::timeout(limit, body.collect()).await.unwrap();
    assert_eq!(&rest.unwrap().to_bytes()[..], b"second");
    eventually("echo finished", limit, || async {
        backend.in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn upgrade_echoes_raw_bytes() {
    let backend = Backend::start("up").await;
    let (reply, mut io) = http_upgrade(backend.addr(), "/upgrade", "websocket")
        .await
        .unwrap();
    assert_eq!(reply.status, 101);
    assert_eq!(reply.response_header("upgrade"), Some("websocket"));
    assert_eq!(reply.response_header("x-instance"), Some("up"));
    io.write_all(b"ping over upgraded stream").await.unwrap();
    let mut buf = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping over upgraded stream");
}

#[tokio::test]
async fn restart_on_the_same_port() {
    let backend = Backend::start("old").await;
    let addr = backend.addr();
    let mut conn = Conn::http(addr).await.unwrap();
    conn.get("/", &[]).await.unwrap();
    backend.stop().await;
    assert!(http_get(addr, "/", &[]).await.is_err());
    eventually(
        "kept-alive connection closed",
        Duration::from_secs(5),
        || async { conn.is_closed() },
    )
    .await;
    let new = Backend::start_on("new", addr).await.unwrap();
    assert_eq!(http_get(addr, "/", &[]).await.unwrap().instance(), "new");
    // Dropping the last handle frees the port too.
    drop(new);
    let again = Backend::start_on("again", addr).await.unwrap();
    assert_eq!(again.addr(), addr);
    assert_eq!(http_get(addr, "/", &[]).await.unwrap().instance(), "again");
}

#[tokio::test]
async fn black_hole_and_closed_port() {
    let hole = BlackHole::start().await;
    let started = Instant::now();
    let raw = raw_exchange(
        hole.addr(),
        b"GET / HTTP/1.1\r\n\r\n",
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    assert!(raw.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(hole.connections(), 1);

    let closed = closed_port();
    assert!(raw_exchange(closed, b"x", Duration::from_secs(1))
        .await
        .is_err());
    assert!(http_get(closed, "/", &[]).await.is_err());
}

#[tokio::test]
#[should_panic(expected = "waiting for: never")]
async fn eventually_panics_on_timeout() {
    eventually("never", Duration::from_millis(50), || async { false }).await;
}
