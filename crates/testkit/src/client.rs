//! Test clients that go through the real network: one-shot requests, keep-alive connections,
//! HTTP upgrades and raw byte exchanges. Every operation is bounded by [`CLIENT_TIMEOUT`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, UPGRADE};
use http::{Method, Request, Uri};
use http_body::Body;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::{BoxError, Reply, CLIENT_TIMEOUT};

/// Request body type the connections send.
type ReqBody = BoxBody<Bytes, BoxError>;

/// Runs `fut` under [`CLIENT_TIMEOUT`], naming `what` in the timeout error.
async fn bounded<T>(
    what: &str,
    fut: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, BoxError> {
    match tokio::time::timeout(CLIENT_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {CLIENT_TIMEOUT:?}: {what}").into()),
    }
}

/// One-shot GET over a new plain HTTP/1.1 connection.
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, BoxError> {
    Conn::http(addr).await?.get(path, headers).await
}

/// One-shot GET over a new TLS connection with SNI `server_name`; h2 if ALPN negotiated h2, else HTTP/1.1.
pub async fn https_get(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, BoxError> {
    Conn::https(addr, server_name, config)
        .await?
        .get(path, headers)
        .await
}

/// Builds a request with `method`, `path`, extra `headers` and `body`.
pub fn build_request(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Request<Full<Bytes>>, BoxError> {
    let mut req = Request::new(Full::new(body.into()));
    *req.method_mut() = method;
    *req.uri_mut() = path.parse::<Uri>()?;
    for (name, value) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    Ok(req)
}

enum Sender {
    H1(http1::SendRequest<ReqBody>),
    H2(http2::SendRequest<ReqBody>),
}

/// A keep-alive HTTP/1.1 (or h2) client over one connection, for several requests on the same connection.
pub struct Conn {
    sender: Sender,
    scheme: &'static str,
    /// `Host` for HTTP/1.1, `:authority` for h2.
    authority: String,
    alpn: Option<Vec<u8>>,
    peer_cert_der: Option<Vec<u8>>,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    /// Opens a plain HTTP/1.1 connection to `addr`.
    pub async fn http(addr: SocketAddr) -> Result<Conn, BoxError> {
        bounded(&format!("connect to {addr}"), async {
            let tcp = connect(addr).await?;
            Conn::handshake(tcp, false, "http", addr.to_string(), None, None).await
        })
        .await
    }

    /// Opens a cleartext h2 connection (prior knowledge, "h2c") to `addr`.
    pub async fn h2c(addr: SocketAddr) -> Result<Conn, BoxError> {
        bounded(&format!("h2c connect to {addr}"), async {
            let tcp = connect(addr).await?;
            Conn::handshake(tcp, true, "http", addr.to_string(), None, None).await
        })
        .await
    }

    /// Opens a TLS connection to `addr` with SNI `server_name`; speaks h2 if ALPN negotiated h2, else HTTP/1.1.
    pub async fn https(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Conn, BoxError> {
        bounded(&format!("TLS connect to {addr} as {server_name}"), async {
            let tcp = connect(addr).await?;
            let name = ServerName::try_from(server_name.to_string())?;
            let tls = TlsConnector::from(config).connect(name, tcp).await?;
            let session = tls.get_ref().1;
            let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
            let peer_cert = session
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|cert| cert.to_vec());
            let h2 = alpn.as_deref() == Some(b"h2");
            let authority = authority_for(server_name, addr.port());
            Conn::handshake(tls, h2, "https", authority, alpn, peer_cert).await
        })
        .await
    }

    async fn handshake<I>(
        io: I,
        h2: bool,
        scheme: &'static str,
        authority: String,
        alpn: Option<Vec<u8>>,
        peer_cert_der: Option<Vec<u8>>,
    ) -> Result<Conn, BoxError>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        let (sender, driver) = if h2 {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await?;
            let driver = tokio::spawn(async move {
                let _ = conn.await;
            });
            (Sender::H2(sender), driver)
        } else {
            let (sender, conn) = http1::Builder::new().handshake(io).await?;
            let driver = tokio::spawn(async move {
                let _ = conn.with_upgrades().await;
            });
            (Sender::H1(sender), driver)
        };
        Ok(Conn {
            sender,
            scheme,
            authority,
            alpn,
            peer_cert_der,
            driver,
        })
    }

    /// Whether this connection speaks h2.
    pub fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    /// The ALPN protocol negotiated (TLS connections only).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// The server's leaf certificate, DER (TLS connections only).
    pub fn peer_cert_der(&self) -> Option<&[u8]> {
        self.peer_cert_der.as_deref()
    }

    /// Whether the server has closed this connection (or it failed).
    /// Resolves when the connection has closed (the peer closed it, or it failed).
    pub async fn closed(&mut self) {
        let _ = (&mut self.driver).await;
    }

    pub fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    /// GET `path` with extra `headers` on this connection.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Reply, BoxError> {
        let req = build_request(Method::GET, path, headers, Bytes::new())?;
        self.request(req).await
    }

    /// POST `body` to `path` with extra `headers` on this connection.
    pub async fn post(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Reply, BoxError> {
        let req = build_request(Method::POST, path, headers, body)?;
        self.request(req).await
    }

    /// Sends `req` on this connection (adds `Host`, or the h2 scheme and authority, when missing).
    pub async fn request(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, BoxError> {
        self.request_body(req).await
    }

    /// Sends a request with any body (e.g. a streamed one) on this connection.
    pub async fn request_body<B>(&mut self, req: Request<B>) -> Result<Reply, BoxError>
    where
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let what = format!("{} {}", req.method(), req.uri());
        let req = self.prepare(req)?;
        let peer_cert = self.peer_cert_der.clone();
        bounded(&what, async {
            let resp = match &mut self.sender {
                Sender::H1(sender) => {
                    sender.ready().await?;
                    sender.send_request(req).await?
                }
                Sender::H2(sender) => {
                    sender.ready().await?;
                    sender.send_request(req).await?
                }
            };
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(Reply::new(
                parts.status.as_u16(),
                parts.headers,
                body,
                parts.version,
                peer_cert,
            ))
        })
        .await
    }

    /// Sends `GET path` with `Connection: upgrade` and `Upgrade: protocol` (HTTP/1.1 only); on 101 returns the
    /// reply and the upgraded byte stream, consuming the connection. Other statuses are returned as errors.
    pub async fn upgrade(
        mut self,
        path: &str,
        protocol: &str,
    ) -> Result<(Reply, TokioIo<Upgraded>), BoxError> {
        let req = build_request(
            Method::GET,
            path,
            &[("connection", "upgrade"), ("upgrade", protocol)],
            Bytes::new(),
        )?;
        let req = self.prepare(req)?;
        let Sender::H1(sender) = &mut self.sender else {
            return Err("upgrade needs an HTTP/1.1 connection".into());
        };
        let peer_cert = self.peer_cert_der.clone();
        bounded(&format!("upgrade {path}"), async {
            sender.ready().await?;
            let mut resp = sender.send_request(req).await?;
            if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                let status = resp.status();
                let body = resp.into_body().collect().await?.to_bytes();
                return Err(format!("upgrade refused: {status} {body:?}").into());
            }
            let upgraded = hyper::upgrade::on(&mut resp).await?;
            let reply = Reply::new(
                resp.status().as_u16(),
                resp.headers().clone(),
                Bytes::new(),
                resp.version(),
                peer_cert,
            );
            Ok((reply, TokioIo::new(upgraded)))
        })
        .await
    }

    fn prepare<B>(&self, req: Request<B>) -> Result<Request<ReqBody>, BoxError>
    where
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let mut req = req.map(|body| body.map_err(Into::into).boxed());
        match self.sender {
            Sender::H1(_) => {
                if !req.headers().contains_key(HOST) {
                    let host = HeaderValue::from_str(&self.authority)?;
                    req.headers_mut().insert(HOST, host);
                }
            }
            Sender::H2(_) => {
                if req.uri().scheme().is_none() {
                    let path = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/");
                    let uri = format!("{}://{}{}", self.scheme, self.authority, path);
                    *req.uri_mut() = uri.parse()?;
                }
                // Connection-specific headers are forbidden in h2.
                req.headers_mut().remove(CONNECTION);
                req.headers_mut().remove(UPGRADE);
            }
        }
        Ok(req)
    }
}

/// `host:port`, bracketing IPv6 literals.
fn authority_for(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Opens an HTTP/1.1 connection to `addr` and upgrades it on `path` to `protocol` (e.g. "websocket"):
/// the 101 reply and the raw upgraded stream.
pub async fn http_upgrade(
    addr: SocketAddr,
    path: &str,
    protocol: &str,
) -> Result<(Reply, TokioIo<Upgraded>), BoxError> {
    Conn::http(addr).await?.upgrade(path, protocol).await
}

/// Sends raw bytes on a new TCP connection and returns everything read until the peer closes or `timeout` passes
/// (for malformed-request tests). A reset after some data still returns that data.
pub async fn raw_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(stream) => stream?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    };
    // The peer may close (or reset) before taking everything; still read what it answered.
    let _ = tokio::time::timeout_at(deadline, stream.write_all(bytes)).await;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Ok(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}
