//! TCP and SSL listeners end to end: byte streams both ways with half-close, the PROXY protocol,
//! least connections, and TLS termination for any protocol.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use fulcrum_model::{InstanceId, Listener, Policy, PolicyKind, Protocol};
use fulcrum_proxy::HealthState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);

/// A TCP instance: optionally reads a PROXY header first and answers with it, then echoes
/// everything until the client finishes sending, then says `bye` and closes.
struct EchoInstance {
    addr: SocketAddr,
    open: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EchoInstance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo_instances(node: &Node, n: usize, proxy_header: bool) -> (Vec<EchoInstance>, u16) {
    let mut all = Vec::new();
    let mut port = 0;
    for i in 0..n {
        let listener = TcpListener::bind(SocketAddr::new(node.instance_ip(i), port))
            .await
            .unwrap();
        port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&open);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    if proxy_header {
                        let header = read_proxy_header(&mut s).await;
                        s.write_all(&header).await.unwrap();
                        return;
                    }
                    counter.fetch_add(1, Ordering::Relaxed);
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = s.write_all(b"bye").await;
                    counter.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        all.push(EchoInstance {
            addr: SocketAddr::new(node.instance_ip(i), port),
            open,
            task,
        });
    }
    (all, port)
}

/// Reads a PROXY v1 line or a v2 header and describes it as `v1 <line>` or `v2 <src> <dst>`.
async fn read_proxy_header(s: &mut TcpStream) -> Vec<u8> {
    let mut first = [0u8; 12];
    s.read_exact(&mut first).await.unwrap();
    if first.starts_with(b"PROXY ") {
        let mut line = first.to_vec();
        while !line.ends_with(b"\r\n") {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            line.push(b[0]);
        }
        let mut out = b"v1 ".to_vec();
        out.extend_from_slice(&line[..line.len() - 2]);
        return out;
    }
    assert_eq!(&first, b"\r\n\r\n\0\r\nQUIT\n", "a PROXY v2 signature");
    let mut rest = [0u8; 4];
    s.read_exact(&mut rest).await.unwrap();
    assert_eq!(rest[0], 0x21, "version 2, PROXY");
    assert_eq!(rest[1], 0x11, "TCP over IPv4");
    let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    let ip = |b: &[u8]| IpAddr::from([b[0], b[1], b[2], b[3]]);
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    format!(
        "v2 {}:{} {}:{}",
        ip(&body[0..4]),
        port(&body[8..10]),
        ip(&body[4..8]),
        port(&body[10..12])
    )
    .into_bytes()
}

async fn tcp_lb(
    node: &Node,
    name: &str,
    front: Protocol,
    instances: &[EchoInstance],
    port: u16,
    certs: &[&str],
) -> u16 {
    let lb_port = node.port();
    let mut listener = Listener::new(front, lb_port, Protocol::Tcp, port);
    listener.certificates = certs.iter().map(|c| c.to_string()).collect();
    let ids: Vec<InstanceId> = instances
        .iter()
        .map(|i| InstanceId::parse(&i.addr.ip().to_string()).unwrap())
        .collect();
    node.change(|s| {
        s.create_load_balancer(name, vec![listener], 0)?;
        s.configure_health_check(name, fast_check(&format!("TCP:{port}")))?;
        s.register_instances(name, &ids)
    })
    .await;
    for id in &ids {
        node.wait_state(name, id, HealthState::InService).await;
    }
    lb_port
}

/// Sends `data`, half-closes, and reads everything the other side sends until it closes.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    data: &[u8],
) -> Vec<u8> {
    tokio::time::timeout(LIMIT, async {
        s.write_all(data).await.unwrap();
        s.shutdown().await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        out
    })
    .await
    .expect("the exchange finishes")
}

#[tokio::test]
async fn tcp_carries_bytes_both_ways_and_half_close() {
    let node = Node::start().await;
    let (instances, port) = echo_instances(&node, 1, false).await;
    let lb_port = tcp_lb(&node, "tcp", Protocol::Tcp, &instances, port, &[]).await;
    let mut s = TcpStream::connect(node.addr(lb_port)).await.unwrap();
    // 1 MiB up, then the client stops sending; the instance echoes it all and still gets to
    // say goodbye on the half-closed connection.
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let got = exchange(&mut s, &data).await;
    assert_eq!(got.len(), data.len() + 3);
    assert_eq!(&got[..data.len()], &data[..]);
    assert_eq!(&got[data.len()..], b"bye");
}

#[tokio::test]
async fn ssl_terminates_tls_for_any_protocol() {
    let node = Node::start().await;
    let cert = node.certificate("ssl", &["ssl.test"]).await;
    let (instances, port) = echo_instances(&node, 1, false).await;
    let lb_port = tcp_lb(&node, "ssl", Protocol::Ssl, &instances, port, &[&cert]).await;
    // A client asking for a protocol of its own by ALPN is not turned away.
    let config = node.tls_client(&[b"imap"]);
    let tcp = TcpStream::connect(node.addr(lb_port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("ssl.test").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    let got = exchange(&mut tls, b"a001 NOOP\r\n").await;
    assert_eq!(got, b"a001 NOOP\r\nbye");
}

#[tokio::test]
async fn proxy_protocol_tells_the_instance_who_the_client_was() {
    for (version, expect_prefix) in [("1", "v1 PROXY TCP4 127.0.0.1 "), ("2", "v2 127.0.0.1:")] {
        let node = Node::start().await;
        let (instances, port) = echo_instances(&node, 1, true).await;
        let name = format!("pp{version}");
        let lb_port = tcp_lb(&node, &name, Protocol::Tcp, &instances, port, &[]).await;
        let mut attributes = vec![("ProxyProtocol".to_owned(), "true".to_owned())];
        if version == "2" {
            attributes.push(("ProxyProtocolVersion".into(), "2".into()));
        }
        node.change(|s| {
            s.create_policy(
                &name,
                Policy {
                    name: "pp".into(),
                    kind: PolicyKind::Other {
                        type_name: "ProxyProtocolPolicyType".into(),
                        attributes,
                    },
                },
            )?;
            s.set_backend_policies(&name, port, vec!["pp".into()])
        })
        .await;
        let mut s = TcpStream::connect(node.addr(lb_port)).await.unwrap();
        let client_port = s.local_addr().unwrap().port();
        let got = String::from_utf8(exchange(&mut s, b"").await).unwrap();
        assert!(got.starts_with(expect_prefix), "{got}");
        let lb = node.addr(lb_port);
        let want = match version {
            "1" => format!(
                "v1 PROXY TCP4 127.0.0.1 {} {client_port} {}",
                lb.ip(),
                lb.port()
            ),
            _ => format!("v2 127.0.0.1:{client_port} {}", lb),
        };
        assert_eq!(got, want);
    }
}

#[tokio::test]
async fn tcp_balances_by_least_connections() {
    let node = Node::start().await;
    let (instances, port) = echo_instances(&node, 2, false).await;
    let lb_port = tcp_lb(&node, "lc", Protocol::Tcp, &instances, port, &[]).await;
    // Four long connections spread two and two, whatever order they arrive in.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(node.addr(lb_port)).await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        tokio::time::timeout(LIMIT, s.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        held.push(s);
    }
    assert_eq!(instances[0].open.load(Ordering::Relaxed), 2);
    assert_eq!(instances[1].open.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn tcp_streams_idle_out_but_live_ones_stay() {
    use fulcrum_model::Attributes;
    let node = Node::start().await;
    let (instances, port) = echo_instances(&node, 1, false).await;
    let lb_port = tcp_lb(&node, "tcpidle", Protocol::Tcp, &instances, port, &[]).await;
    node.change(|s| {
        s.set_attributes(
            "tcpidle",
            Attributes {
                idle_timeout_secs: 1,
                ..Attributes::default()
            },
        )
    })
    .await;
    let mut live = TcpStream::connect(node.addr(lb_port)).await.unwrap();
    let mut quiet = TcpStream::connect(node.addr(lb_port)).await.unwrap();
    let started = std::time::Instant::now();
    // The live one talks every 250 ms for 2.5 s and gets every byte back.
    for _ in 0..10 {
        live.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        tokio::time::timeout(LIMIT, live.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The quiet one was closed after about a second of silence.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(1), quiet.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the quiet connection was closed by the idle timeout"
    );
    assert!(started.elapsed() >= Duration::from_millis(2500));
    let got = exchange(&mut live, b"y").await;
    assert_eq!(got, b"ybye");
}
