//! TCP and SSL listeners, TLS to instances, the PROXY protocol and instances that only the
//! balancer can reach, end to end: every load balancer, policy, health check and instance is
//! configured with the official AWS SDK (ELB Classic) against a real `fulcrum serve` child, every
//! certificate is uploaded with IAM `UploadServerCertificate` through the same API (signed by the
//! SDK's own SigV4 signer, `aws-sigv4`: `aws-sdk-iam` costs about three minutes of compilation),
//! and real clients talk to real instances on loopback: TCP echo servers, PROXY-header parsers,
//! testkit HTTPS backends with self-signed certificates, an mTLS backend and a server that answers
//! TLS with garbage.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_elasticloadbalancing as elb;
use base64::Engine as _;
use bytes::Bytes;
use common::{bind_address, instance_ip, Fulcrum, Serve};
use elb::config::retry::RetryConfig;
use elb::config::timeout::TimeoutConfig;
use elb::config::{BehaviorVersion, Region};
use elb::error::DisplayErrorContext;
use elb::types::{HealthCheck, Instance, InstanceState, Listener, PolicyAttribute};
use elb::Client;
use fulcrum_testkit::{
    build_request, client_tls_config, eventually, https_get, Backend, Conn, TestCa,
};
use http::Method;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Health checks run this many times faster than configured.
const TIME_SCALE: u32 = 20;
/// Upper bound for an instance to change state, or for a change to reach the data plane.
const SETTLE: Duration = Duration::from_secs(20);
/// Upper bound of one client exchange through a listener.
const LIMIT: Duration = Duration::from_secs(10);
/// The host name of the listeners' certificate.
const HOST: &str = "www.example.test";
/// The name in the instances' own (self-signed) certificates.
const INSTANCE_HOST: &str = "instance.internal";
/// What the echo instances write after the client has finished sending, before they close.
const TRAILER: &[u8] = b"bye";
/// The region the node runs in (its default) and that the clients sign for.
const REGION: &str = "us-east-1";

// ---------------------------------------------------------------------------------------------
// A node, its SDK client and its IAM uploads.

struct Node {
    fulcrum: Fulcrum,
    elb: Client,
    key_id: String,
    secret: String,
    /// Issues the listeners' certificates.
    ca: TestCa,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start() -> Node {
        Node::start_with(&[]).await
    }

    /// A node started with extra `serve` arguments.
    async fn start_with(args: &[&str]) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let fulcrum = Serve::new(dir.path(), bind_address())
            .time_scale(TIME_SCALE)
            .args(args)
            .spawn_healthy()
            .await;
        let (key_id, secret) = fulcrum.credentials();
        let elb = client(fulcrum.api.expect("api"), &key_id, &secret);
        Node {
            fulcrum,
            elb,
            key_id,
            secret,
            ca: TestCa::new("fulcrum streams test CA"),
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

    /// A TLS client trusting the listeners' CA, offering `alpn`.
    fn tls_client(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        client_tls_config(&self.ca.cert_pem(), alpn)
    }

    /// IAM `UploadServerCertificate`, signed with the admin key by the SDK's SigV4 signer;
    /// returns the certificate's ARN.
    async fn upload_certificate(&self, name: &str, body: &str, key: &str) -> String {
        let form = [
            ("Action", "UploadServerCertificate"),
            ("Version", "2010-05-08"),
            ("ServerCertificateName", name),
            ("CertificateBody", body),
            ("PrivateKey", key),
        ];
        let reply =
            common::signed_call(self.api(), (&self.key_id, &self.secret), "iam", &form).await;
        assert_eq!(
            reply.status,
            200,
            "UploadServerCertificate {name}: {}",
            reply.describe()
        );
        let text = reply.text();
        let arn = xml_text(&text, "Arn")
            .unwrap_or_else(|| panic!("no Arn in the answer: {text}"))
            .to_owned();
        assert!(
            arn.ends_with(&format!("server-certificate/{name}")),
            "{arn}"
        );
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        arn
    }

    /// Uploads a certificate for [`HOST`] issued by the node's test CA under `name`.
    async fn upload_front(&self, name: &str) -> String {
        let (body, key) = self.ca.issue(&[HOST]);
        self.upload_certificate(name, &body, &key).await
    }

    async fn create(&self, lb: &str, listeners: Vec<Listener>) {
        self.elb
            .create_load_balancer()
            .load_balancer_name(lb)
            .set_listeners(Some(listeners))
            .availability_zones("us-east-1a")
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateLoadBalancer {lb}: {}", DisplayErrorContext(&e)));
    }

    /// A fast health check on `target`: every 10 s with a 8 s timeout (scaled: 500 ms and
    /// 400 ms), 2 to come in and 2 to go out.
    async fn health_check(&self, lb: &str, target: &str) {
        let check = HealthCheck::builder()
            .target(target)
            .interval(10)
            .timeout(8)
            .healthy_threshold(2)
            .unhealthy_threshold(2)
            .build()
            .expect("health check");
        self.elb
            .configure_health_check()
            .load_balancer_name(lb)
            .health_check(check)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "ConfigureHealthCheck {lb} {target}: {}",
                    DisplayErrorContext(&e)
                )
            });
    }

    /// Registers instances by their literal addresses.
    async fn register(&self, lb: &str, ips: &[IpAddr]) {
        let instances = ips
            .iter()
            .map(|ip| Instance::builder().instance_id(ip.to_string()).build())
            .collect();
        self.elb
            .register_instances_with_load_balancer()
            .load_balancer_name(lb)
            .set_instances(Some(instances))
            .send()
            .await
            .unwrap_or_else(|e| panic!("RegisterInstances {lb}: {}", DisplayErrorContext(&e)));
    }

    async fn policy(&self, lb: &str, name: &str, type_name: &str, attributes: &[(&str, &str)]) {
        let attributes = attributes
            .iter()
            .map(|(k, v)| {
                PolicyAttribute::builder()
                    .attribute_name(*k)
                    .attribute_value(*v)
                    .build()
            })
            .collect();
        self.elb
            .create_load_balancer_policy()
            .load_balancer_name(lb)
            .policy_name(name)
            .policy_type_name(type_name)
            .set_policy_attributes(Some(attributes))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "CreateLoadBalancerPolicy {lb} {name} ({type_name}): {}",
                    DisplayErrorContext(&e)
                )
            });
    }

    async fn backend_policies(&self, lb: &str, instance_port: u16, names: &[&str]) {
        self.elb
            .set_load_balancer_policies_for_backend_server()
            .load_balancer_name(lb)
            .instance_port(i32::from(instance_port))
            .set_policy_names(Some(names.iter().map(|n| (*n).to_owned()).collect()))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "SetLoadBalancerPoliciesForBackendServer {lb} {instance_port} {names:?}: {}",
                    DisplayErrorContext(&e)
                )
            });
    }

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

    /// Polls `DescribeInstanceHealth` until every one of `n` instances is in `state`; returns
    /// the answer.
    async fn wait_state(&self, lb: &str, n: usize, state: &str) -> Vec<InstanceState> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let states = self.health(lb).await;
            if states.len() == n && states.iter().all(|s| s.state() == Some(state)) {
                return states;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {SETTLE:?} waiting for {n} instances {state} in {lb}; \
                 DescribeInstanceHealth says {}",
                show_states(&states)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The number of file descriptors the node holds.
    fn fds(&self) -> usize {
        let dir = format!("/proc/{}/fd", self.fulcrum.pid());
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {dir}: {e}"))
            .count()
    }
}

/// An SDK client for the API at `api`.
fn client(api: SocketAddr, key_id: &str, secret: &str) -> Client {
    let creds = Credentials::new(key_id, secret, None, None, "fulcrum");
    let config = elb::Config::builder()
        .endpoint_url(format!("http://{api}"))
        .region(Region::new(REGION))
        .credentials_provider(creds)
        .behavior_version(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .build();
    Client::from_conf(config)
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

/// A listener with a certificate (HTTPS or SSL in front).
fn tls_listener(
    protocol: &str,
    port: u16,
    instance_protocol: &str,
    instance_port: u16,
    cert_arn: &str,
) -> Listener {
    Listener::builder()
        .protocol(protocol)
        .load_balancer_port(i32::from(port))
        .instance_protocol(instance_protocol)
        .instance_port(i32::from(instance_port))
        .ssl_certificate_id(cert_arn)
        .build()
        .expect("listener")
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

/// Percent-encoding for a form body: everything but RFC 3986's unreserved characters.
/// The text of the first `<tag>` element in `xml`.
fn xml_text<'x>(xml: &'x str, tag: &str) -> Option<&'x str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

// ---------------------------------------------------------------------------------------------
// Instances that are not HTTP servers.

/// A server task on one address, stopped when dropped.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    fn server_port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `ip:port` (port 0: any) and serves every connection with `handle`.
async fn serve<F, Fut>(ip: IpAddr, port: u16, handle: F) -> Server
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(SocketAddr::new(ip, port))
        .await
        .unwrap_or_else(|e| panic!("bind {ip}:{port}: {e}"));
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // Every connection is bounded: a test that goes wrong leaves nothing behind.
            let conn = handle(stream);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
            });
        }
    });
    Server { addr, task }
}

/// A TCP echo instance. A connection's first line (up to `\n`, at most 64 bytes) names it: the
/// instance keeps the names of its open connections, so a test sees where each went. It echoes
/// everything until the client finishes sending, then writes [`TRAILER`] and closes. Health
/// checks (connect, close) send nothing and are not counted.
struct EchoInstance {
    server: Server,
    open: Arc<Mutex<BTreeSet<String>>>,
}

impl EchoInstance {
    fn open(&self) -> BTreeSet<String> {
        self.open.lock().unwrap().clone()
    }
}

async fn echo_instance(ip: IpAddr, port: u16) -> EchoInstance {
    let open = Arc::new(Mutex::new(BTreeSet::new()));
    let names = Arc::clone(&open);
    let server = serve(ip, port, move |mut s| {
        let names = Arc::clone(&names);
        async move {
            let mut head = Vec::new();
            let mut name = None;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if name.is_none() && head.len() < 64 {
                    head.extend_from_slice(&buf[..n]);
                    if let Some(end) = head.iter().position(|b| *b == b'\n') {
                        let first = String::from_utf8_lossy(&head[..end]).into_owned();
                        names.lock().unwrap().insert(first.clone());
                        name = Some(first);
                    }
                }
                if s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            if let Some(name) = name {
                names.lock().unwrap().remove(&name);
            }
            let _ = s.write_all(TRAILER).await;
        }
    })
    .await;
    EchoInstance { server, open }
}

/// `n` echo instances on one port, each on an address of its own.
async fn echo_instances(n: usize) -> (Vec<EchoInstance>, u16) {
    let mut all: Vec<EchoInstance> = Vec::new();
    let mut port = 0;
    for _ in 0..n {
        let instance = echo_instance(instance_ip(), port).await;
        port = instance.server.addr.port();
        all.push(instance);
    }
    (all, port)
}

/// An instance that reads a PROXY protocol header (v1 or v2), answers
/// `v<version> <source> <destination>\n`, then echoes the rest of the stream. A connection that
/// does not start with a valid header is closed without an answer.
async fn proxy_instance(ip: IpAddr) -> Server {
    serve(ip, 0, |mut s| async move {
        let Some(header) = read_proxy_header(&mut s).await else {
            return;
        };
        if s.write_all(format!("{header}\n").as_bytes()).await.is_err() {
            return;
        }
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    })
    .await
}

/// Parses a PROXY v1 line or v2 header into `v1 <src> <dst>` / `v2 <src> <dst>`.
async fn read_proxy_header(s: &mut TcpStream) -> Option<String> {
    const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
    let mut first = [0u8; 12];
    s.read_exact(&mut first).await.ok()?;
    if first.starts_with(b"PROXY ") {
        // v1: at most 107 bytes, ending in CRLF.
        let mut line = first.to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() > 107 {
                return None;
            }
            line.push(s.read_u8().await.ok()?);
        }
        let text = std::str::from_utf8(&line[..line.len() - 2]).ok()?;
        let fields: Vec<&str> = text.split(' ').collect();
        let ["PROXY", family, src, dst, sport, dport] = fields.as_slice() else {
            return None;
        };
        let src: IpAddr = src.parse().ok()?;
        let dst: IpAddr = dst.parse().ok()?;
        let ok = match *family {
            "TCP4" => src.is_ipv4() && dst.is_ipv4(),
            "TCP6" => src.is_ipv6() && dst.is_ipv6(),
            _ => false,
        };
        let sport: u16 = sport.parse().ok()?;
        let dport: u16 = dport.parse().ok()?;
        return ok.then(|| {
            format!(
                "v1 {} {}",
                SocketAddr::new(src, sport),
                SocketAddr::new(dst, dport)
            )
        });
    }
    if &first != V2_SIGNATURE {
        return None;
    }
    let mut rest = [0u8; 4];
    s.read_exact(&mut rest).await.ok()?;
    // Version 2, command PROXY; the length of what follows.
    if rest[0] != 0x21 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let (src, dst) = match rest[1] {
        // TCP over IPv4: 4 + 4 + 2 + 2 bytes.
        0x11 if len >= 12 => {
            let ip = |b: &[u8]| IpAddr::from([b[0], b[1], b[2], b[3]]);
            (
                SocketAddr::new(ip(&body[0..4]), port(&body[8..10])),
                SocketAddr::new(ip(&body[4..8]), port(&body[10..12])),
            )
        }
        // TCP over IPv6: 16 + 16 + 2 + 2 bytes.
        0x21 if len >= 36 => {
            let ip = |b: &[u8]| IpAddr::from(<[u8; 16]>::try_from(b).expect("16 bytes"));
            (
                SocketAddr::new(ip(&body[0..16]), port(&body[32..34])),
                SocketAddr::new(ip(&body[16..32]), port(&body[34..36])),
            )
        }
        _ => return None,
    };
    Some(format!("v2 {src} {dst}"))
}

/// A TLS echo instance (TLS with `config`): as [`echo_instance`] inside TLS, ending with
/// close_notify. With `proxy_header`, it first reads a PROXY header on the TCP connection, before
/// TLS, and sends its description (as [`proxy_instance`]) as the first line inside TLS.
async fn tls_echo_instance(
    ip: IpAddr,
    port: u16,
    config: Arc<rustls::ServerConfig>,
    proxy_header: bool,
) -> Server {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    serve(ip, port, move |mut s| {
        let acceptor = acceptor.clone();
        async move {
            let header = if proxy_header {
                let Some(header) = read_proxy_header(&mut s).await else {
                    return;
                };
                Some(header)
            } else {
                None
            };
            let Ok(mut tls) = acceptor.accept(s).await else {
                return;
            };
            if let Some(header) = header {
                if tls
                    .write_all(format!("{header}\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tls.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tls.write_all(TRAILER).await;
            let _ = tls.shutdown().await;
        }
    })
    .await
}

/// An instance that answers TLS with garbage: on every connection it writes pseudo-random bytes
/// at once (whatever the peer sent), then keeps the connection open until the peer closes it.
async fn garbage_instance(ip: IpAddr, port: u16) -> Server {
    serve(ip, port, |mut s| async move {
        let mut garbage = pseudo_random(512, 0x9e37_79b9_7f4a_7c15);
        // Not a TLS content type (20..=24) in the first byte: rustls must see garbage at once,
        // not wait for the rest of a plausible record.
        if (20..=24).contains(&garbage[0]) {
            garbage[0] ^= 0x80;
        }
        if s.write_all(&garbage).await.is_err() {
            return;
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
}

fn pseudo_random(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

/// A port on `ip` where nothing listens (bound, then released; nobody else uses `ip`).
async fn closed_port_on(ip: IpAddr) -> u16 {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .expect("bind");
    listener.local_addr().expect("local address").port()
}

// ---------------------------------------------------------------------------------------------
// Clients.

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls_connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<TlsStream> {
    let name = rustls::pki_types::ServerName::try_from(HOST).expect("server name");
    tokio::time::timeout(LIMIT, async {
        let tcp = TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
    })
    .await
    .unwrap_or_else(|_| panic!("TLS handshake with {addr} within {LIMIT:?}"))
}

/// Sends `data`, finishes sending (half-close; close_notify first over TLS), and reads
/// everything the other side sends until it closes.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, data: &[u8]) -> Vec<u8> {
    tokio::time::timeout(LIMIT, async {
        s.write_all(data).await.expect("send");
        s.shutdown().await.expect("half-close");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read to the end");
        out
    })
    .await
    .unwrap_or_else(|_| panic!("the exchange did not finish within {LIMIT:?}"))
}

/// Writes `probe` (which may fail) and reads until the peer closes the connection, within
/// [`LIMIT`]. Returns what it answered and how it ended.
async fn until_closed<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    probe: &[u8],
) -> (Vec<u8>, String) {
    tokio::time::timeout(LIMIT, async {
        let _ = s.write_all(probe).await;
        let _ = s.flush().await;
        let mut out = Vec::new();
        let end = match s.read_to_end(&mut out).await {
            Ok(_) => "closed".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        (out, end)
    })
    .await
    .unwrap_or_else(|_| panic!("the connection was not closed within {LIMIT:?}"))
}

/// Like [`until_closed`], and the connection must end without a byte of answer.
async fn assert_closed<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, probe: &[u8]) -> String {
    let (out, end) = until_closed(s, probe).await;
    assert!(
        out.is_empty(),
        "the connection answered {} bytes: {:?}",
        out.len(),
        String::from_utf8_lossy(&out)
    );
    end
}

/// 1 MiB of a pattern that does not repeat on short periods.
fn mebibyte() -> Vec<u8> {
    (0..1 << 20).map(|i| (i % 251) as u8).collect()
}

/// The first bytes of a TLS ClientHello record announcing 512 bytes, of which it sends 11.
const PARTIAL_CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, // handshake record, 512 bytes
    0x01, 0x00, 0x01, 0xfc, // ClientHello, 508 bytes
    0x03, 0x03, // TLS 1.2 in the hello
];

// ---------------------------------------------------------------------------------------------
// 1. TCP listeners.

#[tokio::test]
async fn tcp_listener_carries_bytes_both_ways_with_half_close_and_balances_by_least_connections() {
    let node = Node::start().await;
    let (instances, port) = echo_instances(2).await;
    let ips: Vec<IpAddr> = instances.iter().map(|i| i.server.addr.ip()).collect();
    node.create("tcp", vec![listener("TCP", 7000, "TCP", port)])
        .await;
    node.health_check("tcp", &format!("TCP:{port}")).await;
    node.register("tcp", &ips).await;
    node.wait_state("tcp", 2, "InService").await;
    let lb = node.addr(7000);

    // 1 MiB up, then the client stops sending; the instance echoes all of it and, on the
    // half-closed connection, still says goodbye before it closes.
    let data = mebibyte();
    let mut s = TcpStream::connect(lb).await.expect("connect");
    let got = exchange(&mut s, &data).await;
    assert_eq!(got.len(), data.len() + TRAILER.len());
    assert!(got[..data.len()] == data[..], "the echo differs");
    assert_eq!(&got[data.len()..], TRAILER);

    // Four long connections: least connections spreads them two and two.
    let mut held = Vec::new();
    for i in 0..4 {
        let mut s = TcpStream::connect(lb).await.expect("connect");
        let line = format!("c{i}\n");
        s.write_all(line.as_bytes()).await.expect("send");
        let mut back = vec![0u8; line.len()];
        tokio::time::timeout(LIMIT, s.read_exact(&mut back))
            .await
            .expect("echo within the limit")
            .expect("echo");
        assert_eq!(back, line.as_bytes());
        held.push((format!("c{i}"), s));
    }
    let open: Vec<BTreeSet<String>> = instances.iter().map(EchoInstance::open).collect();
    assert_eq!(
        open.iter().map(BTreeSet::len).collect::<Vec<_>>(),
        [2, 2],
        "{open:?}"
    );

    // The two connections of the first instance end; the next two go there, where round robin
    // would have sent one to each.
    let first = open[0].clone();
    for (name, s) in held.iter_mut().filter(|(name, _)| first.contains(name)) {
        assert_eq!(exchange(s, b"").await, TRAILER, "{name}");
    }
    eventually(
        "the first instance to see its connections end",
        LIMIT,
        || {
            let open = instances[0].open();
            async move { open.is_empty() }
        },
    )
    .await;
    for i in 0..2 {
        let mut s = TcpStream::connect(lb).await.expect("connect");
        let line = format!("n{i}\n");
        s.write_all(line.as_bytes()).await.expect("send");
        let mut back = vec![0u8; line.len()];
        tokio::time::timeout(LIMIT, s.read_exact(&mut back))
            .await
            .expect("echo within the limit")
            .expect("echo");
        held.push((format!("n{i}"), s));
    }
    let want: BTreeSet<String> = ["n0".to_owned(), "n1".to_owned()].into();
    assert_eq!(instances[0].open(), want, "least connections");
    assert_eq!(instances[1].open(), open[1], "least connections");
}

// ---------------------------------------------------------------------------------------------
// 2. SSL listeners.

#[tokio::test]
async fn ssl_listener_terminates_tls_carries_bytes_and_accepts_any_alpn() {
    let node = Node::start().await;
    let cert = node.upload_front("front").await;
    let (instances, port) = echo_instances(1).await;
    node.create("ssl", vec![tls_listener("SSL", 7443, "TCP", port, &cert)])
        .await;
    node.health_check("ssl", &format!("TCP:{port}")).await;
    node.register("ssl", &[instances[0].server.addr.ip()]).await;
    node.wait_state("ssl", 1, "InService").await;

    // A client speaking its own protocol, announced by ALPN, is not turned away, and no
    // protocol is chosen for it.
    let mut tls = tls_connect(node.addr(7443), node.tls_client(&[b"imap"]))
        .await
        .expect("TLS handshake offering ALPN imap");
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    let data = mebibyte();
    let got = exchange(&mut tls, &data).await;
    assert_eq!(got.len(), data.len() + TRAILER.len());
    assert!(got[..data.len()] == data[..], "the echo differs");
    assert_eq!(&got[data.len()..], TRAILER);

    // And one that offers no ALPN at all.
    let mut tls = tls_connect(node.addr(7443), node.tls_client(&[]))
        .await
        .expect("TLS handshake without ALPN");
    assert_eq!(
        exchange(&mut tls, b"a001 NOOP\r\n").await,
        b"a001 NOOP\r\nbye"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Re-encryption to instances with self-signed certificates.

#[tokio::test]
async fn https_and_ssl_listeners_re_encrypt_to_self_signed_instances() {
    let node = Node::start().await;
    let cert = node.upload_front("front").await;
    let (instance_cert, instance_key) = fulcrum_testkit::self_signed(&[INSTANCE_HOST]);
    let tls = fulcrum_testkit::server_tls_config(&instance_cert, &instance_key, &[b"http/1.1"]);
    let instance = Backend::start_tls_on("tls-0", SocketAddr::new(instance_ip(), 0), tls)
        .await
        .expect("start the TLS instance");
    let port = instance.addr().port();
    // Beside it on the same address, a TLS echo server with the same certificate.
    let echo = tls_echo_instance(
        instance.addr().ip(),
        0,
        fulcrum_testkit::server_tls_config(&instance_cert, &instance_key, &[]),
        false,
    )
    .await;
    node.create(
        "reenc",
        vec![
            tls_listener("HTTPS", 7443, "HTTPS", port, &cert),
            tls_listener("SSL", 7444, "SSL", port, &cert),
            tls_listener("SSL", 7445, "SSL", echo.server_port(), &cert),
        ],
    )
    .await;
    node.health_check("reenc", &format!("HTTPS:{port}/health"))
        .await;
    node.register("reenc", &[instance.addr().ip()]).await;
    node.wait_state("reenc", 1, "InService").await;

    // HTTPS -> HTTPS: the instance gets TLS, and the request its forwarded headers.
    let reply = https_get(
        node.addr(7443),
        HOST,
        node.tls_client(&[b"h2", b"http/1.1"]),
        "/",
        &[],
    )
    .await
    .expect("GET through the HTTPS listener");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    let seen = reply.json();
    assert_eq!(seen["tls"], true, "the instance got TLS: {seen}");
    assert_eq!(reply.header("x-forwarded-proto"), Some("https"));

    // SSL -> SSL: bytes both ways, inside TLS on both sides (here HTTP/1.1 carried as bytes).
    let mut conn = Conn::https(node.addr(7444), HOST, node.tls_client(&[b"http/1.1"]))
        .await
        .expect("TLS to the SSL listener");
    let reply = conn
        .get("/", &[])
        .await
        .expect("GET through the SSL listener");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(reply.json()["tls"], true, "{}", reply.describe());
    assert_eq!(
        reply.header("x-forwarded-proto"),
        None,
        "an SSL listener does not touch the bytes"
    );
    let body = Bytes::from(mebibyte());
    let req = build_request(
        Method::POST,
        "/echo",
        &[("content-type", "application/octet-stream")],
        body.clone(),
    )
    .expect("request");
    let reply = conn.request(req).await.expect("POST /echo through SSL");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert!(reply.body == body, "the echoed body differs");

    // SSL -> SSL with half-close: the client's close_notify reaches the instance through the
    // second TLS session, and the instance's last words still come back.
    let mut tls = tls_connect(node.addr(7445), node.tls_client(&[]))
        .await
        .expect("TLS to the SSL listener");
    let data = mebibyte();
    let got = exchange(&mut tls, &data).await;
    assert_eq!(got.len(), data.len() + TRAILER.len());
    assert!(got[..data.len()] == data[..], "the echo differs");
    assert_eq!(&got[data.len()..], TRAILER);
}

// ---------------------------------------------------------------------------------------------
// 4. Backend authentication: pinned public keys.

/// The base64 of the DER SubjectPublicKeyInfo of a certificate, as `openssl x509 -pubkey`
/// prints it between the PEM lines.
fn spki_base64(cert_pem: &str) -> String {
    let der = fulcrum_tls::certificate_public_key(cert_pem).expect("the certificate's public key");
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// Creates `<prefix>-key` (PublicKeyPolicyType) and `<prefix>-auth`
/// (BackendServerAuthenticationPolicyType naming it) and sets the latter on `port`.
async fn pin(node: &Node, lb: &str, port: u16, prefix: &str, public_key: &str) {
    let key = format!("{prefix}-key");
    let auth = format!("{prefix}-auth");
    node.policy(
        lb,
        &key,
        "PublicKeyPolicyType",
        &[("PublicKey", public_key)],
    )
    .await;
    node.policy(
        lb,
        &auth,
        "BackendServerAuthenticationPolicyType",
        &[("PublicKeyPolicyName", key.as_str())],
    )
    .await;
    node.backend_policies(lb, port, &[&auth]).await;
}

/// Waits for the instance of `lb` to be refused for its key and checks why.
async fn wait_refused_for_its_key(node: &Node, lb: &str) {
    let states = node.wait_state(lb, 1, "OutOfService").await;
    let description = states[0].description().unwrap_or_default();
    assert!(
        description.contains("backend authentication policy"),
        "DescribeInstanceHealth should say why: {}",
        show_states(&states)
    );
    assert_eq!(states[0].reason_code(), Some("Instance"));
}

#[tokio::test]
async fn a_pinned_key_in_base64_der_admits_the_right_https_instance_and_refuses_a_wrong_one() {
    let node = Node::start().await;
    let cert = node.upload_front("front").await;
    let (instance_cert, instance_key) = fulcrum_testkit::self_signed(&[INSTANCE_HOST]);
    let tls = fulcrum_testkit::server_tls_config(&instance_cert, &instance_key, &[b"http/1.1"]);
    let instance = Backend::start_tls_on("pinned", SocketAddr::new(instance_ip(), 0), tls)
        .await
        .expect("start the TLS instance");
    let port = instance.addr().port();
    node.create(
        "pin",
        vec![tls_listener("HTTPS", 7443, "HTTPS", port, &cert)],
    )
    .await;
    pin(&node, "pin", port, "right", &spki_base64(&instance_cert)).await;
    node.health_check("pin", &format!("HTTPS:{port}/health"))
        .await;
    node.register("pin", &[instance.addr().ip()]).await;
    node.wait_state("pin", 1, "InService").await;
    let reply = https_get(node.addr(7443), HOST, node.tls_client(&[]), "/", &[])
        .await
        .expect("GET through the pinned HTTPS listener");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(reply.json()["tls"], true);

    // Another key pinned instead: the instance fails its checks, says why, and gets no traffic.
    let (other_cert, _) = fulcrum_testkit::self_signed(&[INSTANCE_HOST]);
    pin(&node, "pin", port, "wrong", &spki_base64(&other_cert)).await;
    wait_refused_for_its_key(&node, "pin").await;
    let served = instance.requests();
    let reply = https_get(node.addr(7443), HOST, node.tls_client(&[]), "/", &[])
        .await
        .expect("GET through the HTTPS listener");
    assert_eq!(reply.status, 503, "{}", reply.describe());
    assert_eq!(
        instance.requests(),
        served,
        "the refused instance got a request"
    );
}

#[tokio::test]
async fn a_pinned_certificate_pem_admits_the_right_ssl_instance_and_refuses_a_wrong_one() {
    let node = Node::start().await;
    let cert = node.upload_front("front").await;
    let (instance_cert, instance_key) = fulcrum_testkit::self_signed(&[INSTANCE_HOST]);
    let tls = fulcrum_testkit::server_tls_config(&instance_cert, &instance_key, &[]);
    let instance = Backend::start_tls_on("pinned", SocketAddr::new(instance_ip(), 0), tls)
        .await
        .expect("start the TLS instance");
    let port = instance.addr().port();
    node.create("pin", vec![tls_listener("SSL", 7443, "SSL", port, &cert)])
        .await;
    // The pin given as the instance's whole certificate (PEM): its public key is what counts.
    pin(&node, "pin", port, "right", &instance_cert).await;
    node.health_check("pin", &format!("SSL:{port}")).await;
    node.register("pin", &[instance.addr().ip()]).await;
    node.wait_state("pin", 1, "InService").await;
    let reply = https_get(
        node.addr(7443),
        HOST,
        node.tls_client(&[b"http/1.1"]),
        "/",
        &[],
    )
    .await
    .expect("GET through the pinned SSL listener");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(reply.json()["tls"], true);

    let (other_cert, _) = TestCa::new("another").issue(&[INSTANCE_HOST]);
    pin(&node, "pin", port, "wrong", &other_cert).await;
    wait_refused_for_its_key(&node, "pin").await;
    let served = instance.requests();
    let mut tls = tls_connect(node.addr(7443), node.tls_client(&[]))
        .await
        .expect("the front handshake still succeeds");
    assert_closed(&mut tls, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(
        instance.requests(),
        served,
        "the refused instance got a request"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. The PROXY protocol.

#[tokio::test]
async fn proxy_protocol_v1_and_v2_tell_the_instance_the_client_address_and_port() {
    let node = Node::start().await;
    let cert = node.upload_front("front").await;
    for (lb, version, tcp_port, ssl_port) in [("pp1", 1, 7001, 7401), ("pp2", 2, 7002, 7402)] {
        let instance = proxy_instance(instance_ip()).await;
        let port = instance.server_port();
        node.create(
            lb,
            vec![
                listener("TCP", tcp_port, "TCP", port),
                tls_listener("SSL", ssl_port, "TCP", port, &cert),
            ],
        )
        .await;
        let mut attributes = vec![("ProxyProtocol", "true")];
        if version == 2 {
            attributes.push(("ProxyProtocolVersion", "2"));
        }
        node.policy(lb, "pp", "ProxyProtocolPolicyType", &attributes)
            .await;
        node.backend_policies(lb, port, &["pp"]).await;
        node.health_check(lb, &format!("TCP:{port}")).await;
        node.register(lb, &[instance.addr.ip()]).await;
        node.wait_state(lb, 1, "InService").await;

        // Over TCP.
        let mut s = TcpStream::connect(node.addr(tcp_port))
            .await
            .expect("connect");
        let client = s.local_addr().expect("local address");
        let got = String::from_utf8(exchange(&mut s, b"hello").await).expect("UTF-8");
        assert_eq!(
            got,
            format!("v{version} {client} {}\nhello", node.addr(tcp_port)),
            "{lb} over TCP"
        );

        // Over SSL: the header goes to the instance first, then the decrypted bytes.
        let mut tls = tls_connect(node.addr(ssl_port), node.tls_client(&[]))
            .await
            .expect("TLS handshake");
        let client = tls.get_ref().0.local_addr().expect("local address");
        let got = String::from_utf8(exchange(&mut tls, b"hello").await).expect("UTF-8");
        assert_eq!(
            got,
            format!("v{version} {client} {}\nhello", node.addr(ssl_port)),
            "{lb} over SSL"
        );
    }

    // SSL to an SSL instance: the header goes first on the TCP connection, before the TLS to
    // the instance (as HAProxy's send-proxy).
    let (instance_cert, instance_key) = fulcrum_testkit::self_signed(&[INSTANCE_HOST]);
    let instance = tls_echo_instance(
        instance_ip(),
        0,
        fulcrum_testkit::server_tls_config(&instance_cert, &instance_key, &[]),
        true,
    )
    .await;
    let port = instance.server_port();
    node.create(
        "pp-tls",
        vec![tls_listener("SSL", 7403, "SSL", port, &cert)],
    )
    .await;
    node.policy(
        "pp-tls",
        "pp",
        "ProxyProtocolPolicyType",
        &[("ProxyProtocol", "true")],
    )
    .await;
    node.backend_policies("pp-tls", port, &["pp"]).await;
    node.health_check("pp-tls", &format!("TCP:{port}")).await;
    node.register("pp-tls", &[instance.addr.ip()]).await;
    node.wait_state("pp-tls", 1, "InService").await;
    let mut tls = tls_connect(node.addr(7403), node.tls_client(&[]))
        .await
        .expect("TLS handshake");
    let client = tls.get_ref().0.local_addr().expect("local address");
    let got = String::from_utf8(exchange(&mut tls, b"hello").await).expect("UTF-8");
    assert_eq!(
        got,
        format!("v1 {client} {}\nhellobye", node.addr(7403)),
        "PROXY v1 before TLS to the instance"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Instances that serve only the balancer (mTLS).

#[tokio::test]
async fn an_instance_requiring_a_client_certificate_is_served_only_through_the_balancer() {
    let node = Node::start().await;
    let cert = node.upload_front("front").await;
    // The instance trusts one CA for clients: the one that issued the balancer's certificate.
    let clients = TestCa::new("balancer clients");
    let (instance_cert, instance_key) = fulcrum_testkit::self_signed(&[INSTANCE_HOST]);
    let tls = fulcrum_testkit::server_tls_config_mtls(
        &instance_cert,
        &instance_key,
        &clients.cert_pem(),
        &[b"http/1.1"],
    );
    let instance = Backend::start_tls_on("mtls", SocketAddr::new(instance_ip(), 0), tls)
        .await
        .expect("start the mTLS instance");
    let port = instance.addr().port();
    let (client_cert, client_key) = clients.issue(&["balancer.internal"]);
    node.upload_certificate("balancer-client", &client_cert, &client_key)
        .await;
    node.create(
        "mtls",
        vec![
            tls_listener("HTTPS", 7443, "HTTPS", port, &cert),
            tls_listener("SSL", 7444, "SSL", port, &cert),
        ],
    )
    .await;
    node.health_check("mtls", &format!("HTTPS:{port}/health"))
        .await;
    node.register("mtls", &[instance.addr().ip()]).await;

    // Without the balancer's certificate, the instance refuses the health checks too.
    let first_failure = Instant::now() + SETTLE;
    loop {
        let states = node.health("mtls").await;
        if states.len() == 1
            && states[0].state() == Some("OutOfService")
            && states[0].reason_code() == Some("Instance")
        {
            break;
        }
        assert_ne!(
            states.first().and_then(InstanceState::state),
            Some("InService"),
            "an instance requiring a client certificate passed without one"
        );
        assert!(
            Instant::now() < first_failure,
            "the instance never failed its checks: {}",
            show_states(&states)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    node.policy(
        "mtls",
        "client-cert",
        "BackendClientCertificatePolicyType",
        &[("ServerCertificateName", "balancer-client")],
    )
    .await;
    node.backend_policies("mtls", port, &["client-cert"]).await;
    node.wait_state("mtls", 1, "InService").await;
    let reply = https_get(node.addr(7443), HOST, node.tls_client(&[]), "/", &[])
        .await
        .expect("GET through the HTTPS listener");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(reply.json()["client_cert"], true, "{}", reply.describe());
    let reply = https_get(
        node.addr(7444),
        HOST,
        node.tls_client(&[b"http/1.1"]),
        "/",
        &[],
    )
    .await
    .expect("GET through the SSL listener");
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(reply.json()["client_cert"], true, "{}", reply.describe());

    // Anyone else, without the balancer's certificate, is turned away by the instance itself.
    let direct = client_tls_config(&instance_cert, &[b"http/1.1"]);
    let refused = https_get(instance.addr(), INSTANCE_HOST, direct, "/", &[]).await;
    assert!(
        refused.is_err(),
        "a direct connection without a client certificate was served: {:?}",
        refused.map(|r| r.describe())
    );
    // So is a client certificate from another CA.
    let (stranger_cert, stranger_key) = TestCa::new("strangers").issue(&["stranger.internal"]);
    let stranger = fulcrum_testkit::client_tls_config_with_cert(
        &instance_cert,
        &[b"http/1.1"],
        &stranger_cert,
        &stranger_key,
    );
    let refused = https_get(instance.addr(), INSTANCE_HOST, stranger, "/", &[]).await;
    assert!(
        refused.is_err(),
        "a direct connection with a stranger's certificate was served: {:?}",
        refused.map(|r| r.describe())
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Bad input.

#[tokio::test]
async fn a_client_that_never_finishes_its_tls_handshake_is_cut_after_the_handshake_timeout() {
    // With a 2 s handshake timeout the cut comes after about 2 s: not at once, and not never.
    const EARLIEST: Duration = Duration::from_millis(1500);
    const LATEST: Duration = Duration::from_secs(6);
    let node = Node::start_with(&["--handshake-timeout", "2"]).await;
    let cert = node.upload_front("front").await;
    let (instances, port) = echo_instances(1).await;
    node.create("ssl", vec![tls_listener("SSL", 7443, "TCP", port, &cert)])
        .await;
    node.health_check("ssl", &format!("TCP:{port}")).await;
    node.register("ssl", &[instances[0].server.addr.ip()]).await;
    node.wait_state("ssl", 1, "InService").await;
    let lb = node.addr(7443);

    let stalled = |hello: &'static [u8]| async move {
        let mut s = TcpStream::connect(lb).await.expect("connect");
        s.write_all(hello).await.expect("send");
        let start = Instant::now();
        let mut buf = [0u8; 1024];
        let ended = tokio::time::timeout(LATEST, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "a client that sent {} bytes of a handshake was not cut within {LATEST:?}",
            hello.len()
        );
        start.elapsed()
    };
    let silent = tokio::spawn(stalled(b""));
    let partial = tokio::spawn(stalled(PARTIAL_CLIENT_HELLO));

    // Meanwhile the listener serves others.
    let mut tls = tls_connect(lb, node.tls_client(&[]))
        .await
        .expect("a handshake beside the stalled ones");
    assert_eq!(exchange(&mut tls, b"ping\n").await, b"ping\nbye");

    for (what, task) in [("silent", silent), ("partial ClientHello", partial)] {
        let elapsed = task.await.expect("the stalled client");
        assert!(
            elapsed >= EARLIEST,
            "the {what} client was cut after {elapsed:?}, before the handshake timeout"
        );
        eprintln!("the {what} client was cut after {elapsed:?}");
    }
}

#[tokio::test]
async fn an_instance_answering_garbage_instead_of_tls_fails_cleanly_and_goes_out_of_service() {
    let node = Node::start().await;
    let cert = node.upload_front("front").await;
    let instance = garbage_instance(instance_ip(), 0).await;
    let port = instance.server_port();
    node.create(
        "garbage",
        vec![
            tls_listener("SSL", 7443, "SSL", port, &cert),
            tls_listener("HTTPS", 7444, "HTTPS", port, &cert),
        ],
    )
    .await;
    // A TCP check only sees the port open: the instance comes in service, and traffic meets
    // its garbage.
    node.health_check("garbage", &format!("TCP:{port}")).await;
    node.register("garbage", &[instance.addr.ip()]).await;
    node.wait_state("garbage", 1, "InService").await;
    let mut tls = tls_connect(node.addr(7443), node.tls_client(&[]))
        .await
        .expect("the front handshake");
    let end = assert_closed(&mut tls, b"hello").await;
    eprintln!("SSL to a garbage instance: {end}");
    let started = Instant::now();
    let reply = https_get(node.addr(7444), HOST, node.tls_client(&[]), "/", &[])
        .await
        .expect("an answer from the HTTPS listener");
    assert_eq!(reply.status, 502, "{}", reply.describe());
    assert!(
        started.elapsed() < LIMIT,
        "the 502 took {:?}",
        started.elapsed()
    );

    // An SSL check does the handshake: the instance goes out of service, and the balancer
    // stops trying it.
    node.health_check("garbage", &format!("SSL:{port}")).await;
    let states = node.wait_state("garbage", 1, "OutOfService").await;
    assert_eq!(
        states[0].reason_code(),
        Some("Instance"),
        "{}",
        show_states(&states)
    );
    eprintln!("{}", show_states(&states));
    let reply = https_get(node.addr(7444), HOST, node.tls_client(&[]), "/", &[])
        .await
        .expect("an answer from the HTTPS listener");
    assert_eq!(reply.status, 503, "{}", reply.describe());
    let mut tls = tls_connect(node.addr(7443), node.tls_client(&[]))
        .await
        .expect("the front handshake");
    assert_closed(&mut tls, b"hello").await;
}

#[tokio::test]
async fn file_descriptors_return_to_baseline_after_a_burst_of_failing_connections() {
    /// Sockets of health checks in flight and other transient descriptors.
    const SLACK: usize = 8;
    const BURST: usize = 200;
    let node = Node::start().await;
    let cert = node.upload_front("front").await;
    // One instance address: an echo server (the health check), a garbage server, and a port
    // where nothing listens.
    let ip = instance_ip();
    let echo = echo_instance(ip, 0).await;
    let echo_port = echo.server.addr.port();
    let garbage = garbage_instance(ip, 0).await;
    let garbage_port = garbage.server_port();
    let refusing_port = closed_port_on(ip).await;
    node.create(
        "burst",
        vec![
            tls_listener("SSL", 7443, "TCP", echo_port, &cert),
            listener("TCP", 7000, "TCP", refusing_port),
            tls_listener("SSL", 7444, "SSL", garbage_port, &cert),
        ],
    )
    .await;
    node.health_check("burst", &format!("TCP:{echo_port}"))
        .await;
    node.register("burst", &[ip]).await;
    node.wait_state("burst", 1, "InService").await;

    let tls = node.tls_client(&[]);
    let ssl = node.addr(7443);
    let refusing = node.addr(7000);
    let to_garbage = node.addr(7444);
    // One failing connection of each kind; returns once the node has closed it (the aborted
    // handshake: once the client has closed it).
    let fail = move |kind: usize| {
        let tls = Arc::clone(&tls);
        async move {
            match kind {
                // A handshake abandoned halfway.
                0 => {
                    let mut s = TcpStream::connect(ssl).await.expect("connect");
                    s.write_all(PARTIAL_CLIENT_HELLO).await.expect("send");
                }
                // Garbage instead of a ClientHello.
                1 => {
                    // (The node may answer with a TLS alert before it closes.)
                    let mut s = TcpStream::connect(ssl).await.expect("connect");
                    until_closed(&mut s, &pseudo_random(64, 7)).await;
                }
                // A TCP listener whose instance refuses the connection.
                2 => {
                    let mut s = TcpStream::connect(refusing).await.expect("connect");
                    assert_closed(&mut s, b"hello").await;
                }
                // An SSL listener whose instance answers TLS with garbage.
                _ => {
                    let mut s = tls_connect(to_garbage, tls).await.expect("front handshake");
                    assert_closed(&mut s, b"hello").await;
                }
            }
        }
    };
    // Each kind once, so that whatever the node allocates once for good is there before the
    // baseline; and the listeners still serve.
    for kind in 0..4 {
        fail(kind).await;
    }
    let mut s = tls_connect(ssl, node.tls_client(&[]))
        .await
        .expect("TLS handshake");
    assert_eq!(exchange(&mut s, b"ping\n").await, b"ping\nbye");
    drop(s);
    let baseline = node.fds();

    let mut peak = 0;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..BURST {
        tasks.spawn(fail(i % 4));
        // At most 50 at once.
        if tasks.len() >= 50 {
            peak = peak.max(node.fds());
            tasks
                .join_next()
                .await
                .expect("a task")
                .expect("a failing connection ended cleanly");
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a failing connection ended cleanly");
    }
    let pid = node.fulcrum.pid();
    eventually(
        &format!("the node's descriptors back to {baseline} + {SLACK}"),
        SETTLE,
        || {
            let now = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count())
                .unwrap_or(usize::MAX);
            async move { now <= baseline + SLACK }
        },
    )
    .await;
    eprintln!(
        "descriptors: baseline {baseline}, peak {peak} during the burst, {} after",
        node.fds()
    );

    // The node still serves.
    let mut s = tls_connect(ssl, node.tls_client(&[]))
        .await
        .expect("TLS handshake after the burst");
    assert_eq!(exchange(&mut s, b"pong\n").await, b"pong\nbye");
}
