//! The CLI's side of the Query API: the options every client command shares, one signed
//! `POST /` per action, and the answer read into JSON (see [`xml`]).

mod credentials;
mod xml;

use std::fmt;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http::{header, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use credentials::Credentials;

pub const ELB: Service = Service {
    name: fulcrum_api::ELB_SERVICE,
    version: "2012-06-01",
};
pub const IAM: Service = Service {
    name: fulcrum_api::IAM_SERVICE,
    version: "2010-05-08",
};

/// Connecting gives up after this; a fulcrum on the same network answers in milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One whole call (request and answer) gives up after this.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Answers larger than this are not read: no honest answer of the API comes near it.
const MAX_ANSWER: usize = 64 << 20;

/// The options of every client command: where the API is, who signs, how to print.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The fulcrum API to talk to: http:// on loopback, https:// elsewhere.
    #[arg(
        long,
        global = true,
        env = "FULCRUM_ENDPOINT",
        default_value = "http://127.0.0.1:9900"
    )]
    pub endpoint: String,
    /// The region to sign for; must be the one `fulcrum serve --region` was given. Defaults to the
    /// profile's `region`, else us-east-1.
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// The access key id to sign with (with --secret-access-key); else AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY; else the credentials file.
    #[arg(long, global = true, requires = "secret_access_key")]
    pub access_key_id: Option<String>,
    /// The secret of --access-key-id.
    #[arg(
        long,
        global = true,
        requires = "access_key_id",
        hide_env_values = true
    )]
    pub secret_access_key: Option<String>,
    /// The credentials file that `fulcrum serve` writes into its data dir. Defaults to
    /// $FULCRUM_DATA_DIR/credentials, else ./fulcrum-data/credentials.
    #[arg(long, global = true, env = "AWS_SHARED_CREDENTIALS_FILE")]
    pub credentials: Option<std::path::PathBuf>,
    /// The CA to trust for an https:// endpoint; defaults to the `api-ca.pem` that `serve`
    /// writes beside the credentials ($FULCRUM_DATA_DIR, else ./fulcrum-data).
    #[arg(long, global = true, env = "AWS_CA_BUNDLE")]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// The profile of the credentials file to use.
    #[arg(long, global = true, default_value = credentials::PROFILE)]
    pub profile: String,
    /// How to print results: human-readable text, or the result as a JSON document.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// An API's name in the credential scope and the `Version` its actions speak.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    name: &'static str,
    version: &'static str,
}

/// An error the API answered with: printed as `Code: Message`, as operators search for it.
#[derive(Debug)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// A connection to the API, ready to sign calls.
pub struct Client {
    endpoint: Uri,
    /// For an https:// endpoint.
    tls: Option<tokio_rustls::TlsConnector>,
    /// The endpoint as the operator gave it, for messages.
    shown: String,
    region: String,
    credentials: Credentials,
    pub output: Output,
}

impl Client {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Client> {
        let endpoint: Uri = args
            .endpoint
            .parse()
            .with_context(|| format!("--endpoint '{}' is not a URL", args.endpoint))?;
        let tls = match endpoint.scheme_str() {
            Some("http") => None,
            Some("https") => Some(tls_config(args)?),
            _ => bail!(
                "--endpoint '{}' must look like http://HOST:PORT or https://HOST:PORT",
                args.endpoint
            ),
        };
        if endpoint.host().is_none() {
            bail!("--endpoint '{}' has no host", args.endpoint);
        }
        let credentials = credentials::resolve(args)?;
        // The file `serve` writes names the region it signs for: use it before the default.
        let region = args
            .region
            .clone()
            .or_else(|| credentials.region.clone())
            .unwrap_or_else(|| "us-east-1".to_owned());
        Ok(Client {
            endpoint,
            tls,
            shown: args.endpoint.clone(),
            region,
            credentials,
            output: args.output,
        })
    }

    /// Runs `action` with `params` and returns its result element as JSON (`{}` when the action
    /// answers nothing).
    pub async fn call(
        &self,
        service: Service,
        action: &str,
        params: &[(String, String)],
    ) -> anyhow::Result<Value> {
        let form = form(service, action, params);
        let (status, body) = tokio::time::timeout(CALL_TIMEOUT, self.post(service, form))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the fulcrum API at {} did not answer {action} within {CALL_TIMEOUT:?}",
                    self.shown
                )
            })??;
        let text = String::from_utf8_lossy(&body);
        if status.is_success() {
            xml::result(&text, action).with_context(|| {
                format!("the fulcrum API at {} answered {action} oddly", self.shown)
            })
        } else if let Some(err) = xml::error(&text) {
            Err(err.into())
        } else {
            bail!(
                "the fulcrum API at {} answered {action} with HTTP {status}: {}",
                self.shown,
                text.chars().take(200).collect::<String>()
            )
        }
    }

    /// Runs `action`, whose answer is lines of text (the access-log tail), and hands each piece
    /// of it to `out` as it arrives; returns when the API ends the answer. With `bounded`, the
    /// whole answer must come within the call timeout; without, it may stream for ever.
    pub async fn lines(
        &self,
        service: Service,
        action: &str,
        params: &[(String, String)],
        bounded: bool,
        mut out: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        let form = form(service, action, params);
        let timed_out = || {
            anyhow::anyhow!(
                "the fulcrum API at {} did not answer {action} within {CALL_TIMEOUT:?}",
                self.shown
            )
        };
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        let (resp, conn) = tokio::time::timeout_at(deadline, self.send(service, form))
            .await
            .map_err(|_| timed_out())??;
        let _conn = AbortOnDrop(conn);
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let bytes = tokio::time::timeout_at(deadline, Limited::new(body, MAX_ANSWER).collect())
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .to_bytes();
            let text = String::from_utf8_lossy(&bytes);
            return match xml::error(&text) {
                Some(err) => Err(err.into()),
                None => bail!(
                    "the fulcrum API at {} answered {action} with HTTP {status}: {}",
                    self.shown,
                    text.chars().take(200).collect::<String>()
                ),
            };
        }
        loop {
            let frame = if bounded {
                tokio::time::timeout_at(deadline, body.frame())
                    .await
                    .map_err(|_| timed_out())?
            } else {
                body.frame().await
            };
            let Some(frame) = frame else {
                return Ok(());
            };
            let frame = frame.with_context(|| {
                format!("the fulcrum API at {} broke off the answer", self.shown)
            })?;
            if let Some(data) = frame.data_ref() {
                out(data).context("cannot write the lines out")?;
            }
        }
    }

    async fn post(
        &self,
        service: Service,
        form: String,
    ) -> anyhow::Result<(http::StatusCode, Bytes)> {
        let (resp, conn) = self.send(service, form).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot read the answer of {}", self.shown))?
            .to_bytes();
        conn.abort();
        Ok((status, body))
    }

    /// Sends one signed call on a connection of its own; the answer's head, with the task that
    /// drives the connection while the body is read.
    async fn send(
        &self,
        service: Service,
        form: String,
    ) -> anyhow::Result<(
        http::Response<hyper::body::Incoming>,
        tokio::task::JoinHandle<Result<(), hyper::Error>>,
    )> {
        let authority = self.endpoint.authority().expect("checked in new");
        let port = authority
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let unreachable = || {
            format!(
                "cannot reach the fulcrum API at {} (is `fulcrum serve` running there? \
                 --endpoint or FULCRUM_ENDPOINT say where it is)",
                self.shown
            )
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| anyhow::anyhow!("connecting timed out after {CONNECT_TIMEOUT:?}"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(unreachable)?;
        let (mut sender, conn) = match &self.tls {
            None => {
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .with_context(unreachable)?;
                (sender, tokio::spawn(async move { conn.await.map(|_| ()) }))
            }
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .with_context(|| format!("--endpoint {}: not a TLS server name", self.shown))?;
                let tls = connector.connect(name, stream).await.with_context(|| {
                    format!(
                        "TLS with the fulcrum API at {} failed (is --ca-bundle the CA of its \
                         certificate?)",
                        self.shown
                    )
                })?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .with_context(unreachable)?;
                (sender, tokio::spawn(async move { conn.await.map(|_| ()) }))
            }
        };

        let uri = Uri::builder()
            .scheme(if self.tls.is_some() { "https" } else { "http" })
            .authority(authority.clone())
            .path_and_query("/")
            .build()?;
        let mut req = Request::post(uri)
            .header(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(form.into_bytes())?;
        let c = &self.credentials;
        fulcrum_sigv4::sign(
            &mut req,
            &c.access_key_id,
            &c.secret_access_key,
            &self.region,
            service.name,
            SystemTime::now(),
        )
        .context("cannot sign the request")?;
        // hyper sends the request line's path; the full URI was only for signing `host`.
        *req.uri_mut() = Uri::from_static("/");
        let req = req.map(|b| Full::new(Bytes::from(b)));
        let resp = sender
            .send_request(req)
            .await
            .with_context(|| format!("the fulcrum API at {} closed the connection", self.shown))?;
        Ok((resp, conn))
    }
}

/// Stops driving a connection once its answer is no longer read.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The form of one call: `Action`, `Version`, then the parameters, percent-encoded.
fn form(service: Service, action: &str, params: &[(String, String)]) -> String {
    let mut form = format!("Action={}&Version={}", encode(action), service.version);
    for (k, v) in params {
        form.push('&');
        form.push_str(&encode(k));
        form.push('=');
        form.push_str(&encode(v));
    }
    form
}

/// TLS to an https:// endpoint, trusting the CA of --ca-bundle (or the one `serve` wrote).
fn tls_config(args: &ClientArgs) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let path = args.ca_bundle.clone().unwrap_or_else(|| {
        std::env::var_os("FULCRUM_DATA_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from("./fulcrum-data"))
            .join("api-ca.pem")
    });
    let pem = std::fs::read(&path).with_context(|| {
        format!(
            "an https:// endpoint needs the CA to trust: cannot read {} (--ca-bundle or \
             AWS_CA_BUNDLE)",
            path.display()
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.with_context(|| format!("{} is not PEM", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{} holds a certificate rustls refuses", path.display()))?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    let config = rustls::ClientConfig::builder_with_provider(fulcrum_tls::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("rustls refused TLS 1.2 and 1.3")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as SigV4 and the Query
/// protocol both read it.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The parameters of a call, in order: `p.set("LoadBalancerName", name)`.
#[derive(Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn set(&mut self, name: &str, value: impl ToString) -> &mut Self {
        self.0.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn opt(&mut self, name: &str, value: Option<impl ToString>) -> &mut Self {
        if let Some(v) = value {
            self.set(name, v);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode("a b+c/=\n"), "a%20b%2Bc%2F%3D%0A");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
