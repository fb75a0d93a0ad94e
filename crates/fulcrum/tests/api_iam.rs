//! The IAM (`2010-05-08`) part of the control API as an operator's tools see it: the official
//! AWS SDK for Rust (`aws-sdk-iam`) against a real `fulcrum serve` child process, signed with the
//! admin key that `serve` writes to `DIR/credentials`. Server certificates (upload with its
//! checks, get, list with path prefixes and pages, rename and re-path, delete, tags) and access
//! keys (create, list, delete). Where a certificate is used by a listener, the load balancer is
//! created with `aws-sdk-elasticloadbalancing` and real TLS connections check what the listener
//! serves. Every test starts its own node (own data dir, API port and listener address).

mod common;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sdk_elasticloadbalancing as elb;
use aws_sdk_iam as iam;
use common::{bind_address, refused, Fulcrum, Serve};
use fulcrum_testkit::{certs_from_pem, client_tls_config, https_get, TestCa};
use iam::config::interceptors::AfterDeserializationInterceptorContextRef;
use iam::config::retry::RetryConfig;
use iam::config::timeout::TimeoutConfig;
use iam::config::{BehaviorVersion, ConfigBag, Intercept, Region, RuntimeComponents};
use iam::error::{DisplayErrorContext, ProvideErrorMetadata};
use iam::types::{ServerCertificate, ServerCertificateMetadata, Tag};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::time::Instant;

/// The account in fulcrum's ARNs.
const ACCOUNT: &str = "000000000000";
/// The region the node runs in (its default) and that the clients sign for.
const REGION: &str = "us-east-1";
/// Upper bound for a change to reach the data plane.
const SETTLE: Duration = Duration::from_secs(20);
/// The host name the certificates are for.
const HOST: &str = "www.example.test";

// ---------------------------------------------------------------------------------------------
// A node and its SDK clients.

struct Node {
    fulcrum: Fulcrum,
    iam: iam::Client,
    elb: elb::Client,
    key_id: String,
    secret: String,
    dir: tempfile::TempDir,
}

impl Node {
    async fn start() -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let fulcrum = Serve::new(dir.path(), bind_address()).spawn_healthy().await;
        let (key_id, secret) = fulcrum.credentials();
        let api = fulcrum.api.expect("api");
        Node {
            iam: iam_client(api, &key_id, &secret),
            elb: elb_client(api, &key_id, &secret),
            fulcrum,
            key_id,
            secret,
            dir,
        }
    }

    fn api(&self) -> SocketAddr {
        self.fulcrum.api.expect("api")
    }

    /// A listener address on this node.
    fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.fulcrum.bind.expect("bind"), port)
    }

    /// Uploads `body`/`key` (and `chain`) as `name`; panics with the SDK's error otherwise.
    async fn upload(
        &self,
        name: &str,
        path: Option<&str>,
        body: &str,
        key: &str,
        chain: Option<&str>,
    ) -> ServerCertificateMetadata {
        self.iam
            .upload_server_certificate()
            .server_certificate_name(name)
            .set_path(path.map(str::to_owned))
            .certificate_body(body)
            .private_key(key)
            .set_certificate_chain(chain.map(str::to_owned))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "UploadServerCertificate {name}: {}",
                    DisplayErrorContext(&e)
                )
            })
            .server_certificate_metadata()
            .unwrap_or_else(|| panic!("UploadServerCertificate {name}: no metadata"))
            .clone()
    }

    async fn get(&self, name: &str) -> ServerCertificate {
        self.iam
            .get_server_certificate()
            .server_certificate_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetServerCertificate {name}: {}", DisplayErrorContext(&e)))
            .server_certificate()
            .unwrap_or_else(|| panic!("GetServerCertificate {name}: no certificate"))
            .clone()
    }

    /// Every certificate, as `(path, name, id, arn)`, in one ListServerCertificates call.
    async fn list(&self) -> Vec<(String, String, String, String)> {
        let out = self
            .iam
            .list_server_certificates()
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListServerCertificates: {}", DisplayErrorContext(&e)));
        assert!(!out.is_truncated(), "{out:?}");
        out.server_certificate_metadata_list()
            .iter()
            .map(|m| {
                (
                    m.path().to_owned(),
                    m.server_certificate_name().to_owned(),
                    m.server_certificate_id().to_owned(),
                    m.arn().to_owned(),
                )
            })
            .collect()
    }

    async fn tags(&self, name: &str) -> Vec<(String, String)> {
        let out = self
            .iam
            .list_server_certificate_tags()
            .server_certificate_name(name)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "ListServerCertificateTags {name}: {}",
                    DisplayErrorContext(&e)
                )
            });
        assert!(!out.is_truncated(), "{out:?}");
        pairs(out.tags())
    }

    /// The revision the data plane has applied, from `/healthz` (`ok revision N`).
    async fn applied_revision(&self) -> u64 {
        let reply = self.fulcrum.healthz().await.expect("/healthz answers");
        assert_eq!(reply.status, 200, "{}", reply.describe());
        reply
            .text()
            .trim()
            .strip_prefix("ok revision ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected /healthz body {:?}", reply.text()))
    }

    /// Waits until the data plane has applied a revision after `revision`.
    async fn wait_applied_after(&self, revision: u64) {
        let deadline = Instant::now() + SETTLE;
        while self.applied_revision().await <= revision {
            assert!(
                Instant::now() < deadline,
                "the data plane did not apply a revision after {revision} within {SETTLE:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls new TLS connections (a fresh client each time, trusting only `root_pem`) to the
    /// listener on `port` until one completes and presents `leaf_pem`.
    async fn wait_tls_certificate(&self, port: u16, root_pem: &str, leaf_pem: &str) {
        let addr = self.addr(port);
        let want = certs_from_pem(leaf_pem)[0].to_vec();
        let deadline = Instant::now() + SETTLE;
        loop {
            let tls = client_tls_config(root_pem, &[b"http/1.1"]);
            let last = https_get(addr, HOST, tls, "/", &[]).await;
            if let Ok(reply) = &last {
                if reply.peer_cert_der.as_ref() == Some(&want) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {addr} to present the certificate; last: {:?}",
                last.map(|r| r.describe())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One new TLS connection to the listener on `port` must verify with `root_pem` (so the
    /// chain is served) and present `leaf_pem`.
    async fn assert_tls_certificate(&self, port: u16, root_pem: &str, leaf_pem: &str) {
        let addr = self.addr(port);
        let tls = client_tls_config(root_pem, &[b"http/1.1"]);
        let reply = https_get(addr, HOST, tls, "/", &[])
            .await
            .unwrap_or_else(|e| panic!("TLS to {addr}: {e}"));
        assert_eq!(
            reply.peer_cert_der.as_deref(),
            Some(certs_from_pem(leaf_pem)[0].as_ref()),
            "{addr} presents another certificate"
        );
    }
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(20))
        .build()
}

/// An IAM SDK client for the API at `api`.
fn iam_client(api: SocketAddr, key_id: &str, secret: &str) -> iam::Client {
    let config = iam::Config::builder()
        .endpoint_url(format!("http://{api}"))
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(key_id, secret, None, None, "fulcrum"))
        .behavior_version(BehaviorVersion::latest())
        // A refusal is the answer under test: no retry should hide or repeat it.
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts())
        .build();
    iam::Client::from_conf(config)
}

/// An ELB SDK client for the API at `api`.
fn elb_client(api: SocketAddr, key_id: &str, secret: &str) -> elb::Client {
    let config = elb::Config::builder()
        .endpoint_url(format!("http://{api}"))
        .region(elb::config::Region::new(REGION))
        .credentials_provider(Credentials::new(key_id, secret, None, None, "fulcrum"))
        .behavior_version(elb::config::BehaviorVersion::latest())
        .retry_config(elb::config::retry::RetryConfig::disabled())
        .timeout_config(timeouts())
        .build();
    elb::Client::from_conf(config)
}

fn https_listener(port: u16, cert_arn: &str) -> elb::types::Listener {
    elb::types::Listener::builder()
        .protocol("HTTPS")
        .load_balancer_port(i32::from(port))
        .instance_protocol("HTTP")
        .instance_port(8080)
        .ssl_certificate_id(cert_arn)
        .build()
        .expect("listener")
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().expect("tag")
}

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn arn(path: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:server-certificate{path}{name}")
}

fn now_secs() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("seconds fit in i64")
}

/// The lines of base64 inside a PEM block: what must never leave the node.
fn pem_payload_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect()
}

/// The lines of `key_pem` that say something secret: a PKCS#8 key also holds the public key,
/// and a line of it may be found in the certificate too, by chance of alignment.
fn secret_lines<'k>(key_pem: &'k str, cert_pem: &str) -> Vec<&'k str> {
    let public: String = pem_payload_lines(cert_pem).concat();
    pem_payload_lines(key_pem)
        .into_iter()
        .filter(|l| !public.contains(l))
        .collect()
}

/// Asserts that `text` holds no private key, neither a PEM private key label nor any secret
/// line of `key_pem` (the key of `cert_pem`).
#[track_caller]
fn assert_no_key(what: &str, text: &str, key_pem: &str, cert_pem: &str) {
    assert!(
        !text.contains("PRIVATE KEY"),
        "{what} holds a private key:\n{text}"
    );
    for line in secret_lines(key_pem, cert_pem) {
        assert!(
            !text.contains(line),
            "{what} holds a line of the private key ({line}):\n{text}"
        );
    }
}

/// Keeps the raw body of the response the SDK received, for checks the typed output cannot
/// make (what is NOT in the answer).
#[derive(Debug, Clone, Default)]
struct RawBody(Arc<Mutex<Option<String>>>);

impl RawBody {
    fn text(&self) -> String {
        self.0
            .lock()
            .expect("lock")
            .clone()
            .expect("the interceptor saw a response body")
    }
}

impl Intercept for RawBody {
    fn name(&self) -> &'static str {
        "RawBody"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let body = context.response().body().bytes().unwrap_or_default();
        *self.0.lock().expect("lock") = Some(String::from_utf8_lossy(body).into_owned());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates: a root, an intermediate and leaves, made with rcgen.

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name = dn(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A root, an intermediate it signed, and leaves the intermediate signs.
struct Chain {
    root_pem: String,
    intermediate: rcgen::Certificate,
    intermediate_key: KeyPair,
}

/// The notAfter of [`Chain::leaf`]s: 2031-05-17T00:00:00Z.
fn leaf_not_after() -> i64 {
    rcgen::date_time_ymd(2031, 5, 17).unix_timestamp()
}

impl Chain {
    fn new(name: &str) -> Chain {
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("root key");
        let root = ca_params(&format!("{name} root"))
            .self_signed(&root_key)
            .expect("self-sign the root");
        let intermediate_key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("intermediate key");
        let intermediate = ca_params(&format!("{name} intermediate"))
            .signed_by(&intermediate_key, &root, &root_key)
            .expect("sign the intermediate");
        Chain {
            root_pem: root.pem(),
            intermediate,
            intermediate_key,
        }
    }

    fn intermediate_pem(&self) -> String {
        self.intermediate.pem()
    }

    /// The chain as IAM wants it: the intermediate (the leaf's issuer), then the root.
    fn chain_pem(&self) -> String {
        format!("{}{}", self.intermediate_pem(), self.root_pem)
    }

    /// A leaf for [`HOST`] (ECDSA P-256) valid until [`leaf_not_after`]: (cert_pem, key_pem).
    fn leaf(&self) -> (String, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
        let mut params = CertificateParams::new(vec![HOST.to_owned()]).expect("leaf params");
        params.distinguished_name = dn(HOST);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let cert = params
            .signed_by(&key, &self.intermediate, &self.intermediate_key)
            .expect("sign the leaf");
        (cert.pem(), key.serialize_pem())
    }
}

/// Every file under `dir`, read as bytes and lossily as text, each after a line naming it.
fn read_tree(dir: &Path) -> String {
    let mut all = String::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                all.push_str(&format!("\n=== {} ===\n", path.display()));
                all.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    all
}

// ---------------------------------------------------------------------------------------------
// UploadServerCertificate and GetServerCertificate.

#[tokio::test]
async fn ecdsa_rsa_and_chained_certificates_are_uploaded_with_their_metadata() {
    let node = Node::start().await;
    let ca = TestCa::new("fulcrum iam test CA");

    // ECDSA P-256, at the root path.
    let before = now_secs();
    let (ecdsa_body, ecdsa_key) = ca.issue(&[HOST]);
    let ecdsa = node
        .upload("www-ecdsa", None, &ecdsa_body, &ecdsa_key, None)
        .await;
    let after = now_secs();
    assert_eq!(ecdsa.path(), "/");
    assert_eq!(ecdsa.server_certificate_name(), "www-ecdsa");
    assert_eq!(ecdsa.arn(), arn("/", "www-ecdsa"));
    let id = ecdsa.server_certificate_id();
    assert!(
        id.len() == 21
            && id.starts_with("ASCA")
            && id[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "not an IAM server certificate id: {id}"
    );
    let uploaded = ecdsa.upload_date().expect("UploadDate").secs();
    assert!(
        (before - 1..=after + 1).contains(&uploaded),
        "UploadDate {uploaded} is not between {before} and {after}"
    );
    assert!(ecdsa.expiration().is_some(), "{ecdsa:?}");

    // RSA-2048, with a path: the path is part of the ARN.
    let (rsa_body, rsa_key) = ca.issue_rsa(&[HOST]);
    assert!(rsa_key.contains("PRIVATE KEY"));
    let rsa = node
        .upload("www-rsa", Some("/prod/"), &rsa_body, &rsa_key, None)
        .await;
    assert_eq!(rsa.path(), "/prod/");
    assert_eq!(
        rsa.arn(),
        format!("arn:aws:iam::{ACCOUNT}:server-certificate/prod/www-rsa")
    );
    assert_ne!(rsa.server_certificate_id(), id, "ids are unique");

    // A leaf signed by an intermediate signed by a root, with the chain in order, and tags.
    let chain = Chain::new("iam chain");
    let (leaf_body, leaf_key) = chain.leaf();
    let out = node
        .iam
        .upload_server_certificate()
        .server_certificate_name("www-chained")
        .path("/prod/eu/")
        .certificate_body(&leaf_body)
        .private_key(&leaf_key)
        .certificate_chain(chain.chain_pem())
        .tags(tag("team", "edge"))
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload with a chain: {}", DisplayErrorContext(&e)));
    let chained = out.server_certificate_metadata().expect("metadata");
    assert_eq!(chained.arn(), arn("/prod/eu/", "www-chained"));
    assert_eq!(
        chained.expiration().map(|d| d.secs()),
        Some(leaf_not_after()),
        "Expiration is the leaf's notAfter (2031-05-17T00:00:00Z)"
    );
    assert_eq!(
        pairs(out.tags()),
        // Tags are kept and listed by key.
        [
            ("env".into(), "prod".into()),
            ("team".into(), "edge".into())
        ]
    );

    // GetServerCertificate gives back body, chain, metadata and tags.
    let got = node.get("www-chained").await;
    assert_eq!(got.certificate_body().trim(), leaf_body.trim());
    assert_eq!(
        got.certificate_chain().map(str::trim),
        Some(chain.chain_pem().trim())
    );
    let meta = got.server_certificate_metadata().expect("metadata");
    assert_eq!(meta, chained, "Get's metadata is Upload's");
    assert_eq!(
        node.tags("www-chained").await,
        // Tags are kept and listed by key.
        [
            ("env".into(), "prod".into()),
            ("team".into(), "edge".into())
        ]
    );
    assert_eq!(pairs(got.tags()), node.tags("www-chained").await);
    // As IAM answers (Terraform's plan depends on it): PEM without its trailing newline, and
    // no Tags member at all when there are none.
    assert_eq!(got.certificate_body(), leaf_body.trim());
    assert_eq!(got.certificate_chain(), Some(chain.chain_pem().trim()));
    let got = node.get("www-rsa").await;
    assert_eq!(got.certificate_body(), rsa_body.trim());
    assert_eq!(got.certificate_chain(), None, "no chain was uploaded");
    assert_eq!(got.tags, None, "an empty Tags member where IAM sends none");
    assert_eq!(got.server_certificate_metadata(), Some(&rsa));

    // All three are listed, ordered by path and name.
    let listed: Vec<_> = node
        .list()
        .await
        .into_iter()
        .map(|(path, name, _, arn)| (path, name, arn))
        .collect();
    assert_eq!(
        listed,
        [
            ("/".into(), "www-ecdsa".into(), arn("/", "www-ecdsa")),
            ("/prod/".into(), "www-rsa".into(), arn("/prod/", "www-rsa")),
            (
                "/prod/eu/".into(),
                "www-chained".into(),
                arn("/prod/eu/", "www-chained")
            ),
        ]
    );

    // The private keys are encrypted at rest: no line of any of them is in the data dir.
    let on_disk = read_tree(node.dir.path());
    for (key, cert) in [
        (&ecdsa_key, &ecdsa_body),
        (&rsa_key, &rsa_body),
        (&leaf_key, &leaf_body),
    ] {
        let secret = secret_lines(key, cert);
        assert!(secret.len() >= 2, "{key}");
        for line in secret {
            if let Some(at) = on_disk.find(line) {
                let file = on_disk[..at]
                    .rfind("\n=== ")
                    .map(|f| on_disk[f..].lines().nth(1).unwrap_or_default())
                    .unwrap_or_default();
                let around =
                    &on_disk[at.saturating_sub(300)..(at + line.len() + 300).min(on_disk.len())];
                panic!(
                    "a line of a private key is stored in clear in the data dir ({file}): {line}\n\
                     around it:\n{around}"
                );
            }
        }
    }
}

#[tokio::test]
async fn get_server_certificate_never_returns_the_private_key() {
    let node = Node::start().await;
    let chain = Chain::new("no key");
    let (body, key) = chain.leaf();

    let raw = RawBody::default();
    node.iam
        .upload_server_certificate()
        .server_certificate_name("secret")
        .certificate_body(&body)
        .private_key(&key)
        .certificate_chain(chain.chain_pem())
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload: {}", DisplayErrorContext(&e)));
    let upload_xml = raw.text();
    assert!(
        upload_xml.contains("<UploadServerCertificateResponse"),
        "{upload_xml}"
    );
    assert_no_key(
        "the UploadServerCertificate answer",
        &upload_xml,
        &key,
        &body,
    );

    let raw = RawBody::default();
    let out = node
        .iam
        .get_server_certificate()
        .server_certificate_name("secret")
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("get: {}", DisplayErrorContext(&e)));
    let get_xml = raw.text();
    // The answer the interceptor saw is the one the SDK read: it holds the body and the chain.
    let got = out.server_certificate().expect("certificate");
    assert_eq!(got.certificate_body().trim(), body.trim());
    for line in pem_payload_lines(&body)
        .into_iter()
        .chain(pem_payload_lines(&chain.chain_pem()))
    {
        assert!(get_xml.contains(line), "{get_xml}");
    }
    assert_no_key("the GetServerCertificate answer", &get_xml, &key, &body);

    let raw = RawBody::default();
    node.iam
        .list_server_certificates()
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .expect("list");
    assert_no_key(
        "the ListServerCertificates answer",
        &raw.text(),
        &key,
        &body,
    );

    // An unknown name.
    let (err, status) = refused(
        "GetServerCertificate of an unknown name",
        node.iam
            .get_server_certificate()
            .server_certificate_name("nope")
            .send()
            .await,
        "NoSuchEntity",
    );
    assert!(err.is_no_such_entity_exception(), "{err:?}");
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_uploads_are_refused_with_iam_codes_and_change_nothing() {
    let node = Node::start().await;
    let ca = TestCa::new("fulcrum iam test CA");
    let chain = Chain::new("bad uploads");
    let (good_body, good_key) = chain.leaf();
    let (other_body, other_key) = ca.issue(&[HOST]);
    node.upload("taken", None, &other_body, &other_key, None)
        .await;
    let state = node.list().await;

    struct Bad<'a> {
        what: &'a str,
        name: &'a str,
        path: Option<&'a str>,
        body: String,
        key: String,
        chain: Option<String>,
        code: &'a str,
        status: u16,
    }
    let bad = |what, body: &str, key: &str, chain: Option<String>, code| Bad {
        what,
        name: "www",
        path: None,
        body: body.to_owned(),
        key: key.to_owned(),
        chain,
        code,
        status: if code == "EntityAlreadyExists" {
            409
        } else {
            400
        },
    };
    let two_certs = format!("{good_body}{}", chain.intermediate_pem());
    let unrelated = Chain::new("unrelated");
    let long_name = "x".repeat(129);
    let cases = vec![
        bad(
            "a body that is not PEM",
            "this is not a certificate",
            &good_key,
            None,
            "MalformedCertificate",
        ),
        bad(
            "a PEM body whose base64 is garbage",
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
            &good_key,
            None,
            "MalformedCertificate",
        ),
        bad(
            "two certificates in the body",
            &two_certs,
            &good_key,
            Some(chain.root_pem.clone()),
            "MalformedCertificate",
        ),
        bad(
            "a private key in place of the body",
            &good_key,
            &good_key,
            None,
            "MalformedCertificate",
        ),
        bad(
            "a chain out of order (root first)",
            &good_body,
            &good_key,
            Some(format!("{}{}", chain.root_pem, chain.intermediate_pem())),
            "MalformedCertificate",
        ),
        bad(
            "a chain of only the root (the intermediate is missing)",
            &good_body,
            &good_key,
            Some(chain.root_pem.clone()),
            "MalformedCertificate",
        ),
        bad(
            "an unrelated chain",
            &good_body,
            &good_key,
            Some(unrelated.chain_pem()),
            "MalformedCertificate",
        ),
        bad(
            "a chain that is garbage",
            &good_body,
            &good_key,
            Some("garbage".to_owned()),
            "MalformedCertificate",
        ),
        bad(
            "a private key that is garbage",
            &good_body,
            "garbage",
            Some(chain.chain_pem()),
            "MalformedCertificate",
        ),
        bad(
            "the private key of another certificate",
            &good_body,
            &other_key,
            Some(chain.chain_pem()),
            "KeyPairMismatch",
        ),
        Bad {
            name: "taken",
            ..bad(
                "a name that is taken",
                &good_body,
                &good_key,
                Some(chain.chain_pem()),
                "EntityAlreadyExists",
            )
        },
        Bad {
            name: "a name/with a slash",
            ..bad(
                "a bad name",
                &good_body,
                &good_key,
                Some(chain.chain_pem()),
                "ValidationError",
            )
        },
        Bad {
            name: &long_name,
            ..bad(
                "a name of 129 characters",
                &good_body,
                &good_key,
                Some(chain.chain_pem()),
                "ValidationError",
            )
        },
        Bad {
            path: Some("prod/"),
            ..bad(
                "a path without its leading slash",
                &good_body,
                &good_key,
                Some(chain.chain_pem()),
                "ValidationError",
            )
        },
        Bad {
            path: Some("/prod"),
            ..bad(
                "a path without its trailing slash",
                &good_body,
                &good_key,
                Some(chain.chain_pem()),
                "ValidationError",
            )
        },
        Bad {
            path: Some("/pr od/"),
            ..bad(
                "a path with a space",
                &good_body,
                &good_key,
                Some(chain.chain_pem()),
                "ValidationError",
            )
        },
    ];
    for case in cases {
        let (err, status) = refused(
            case.what,
            node.iam
                .upload_server_certificate()
                .server_certificate_name(case.name)
                .set_path(case.path.map(str::to_owned))
                .certificate_body(&case.body)
                .private_key(&case.key)
                .set_certificate_chain(case.chain.clone())
                .send()
                .await,
            case.code,
        );
        assert_eq!(status, case.status, "{}: HTTP status", case.what);
        match case.code {
            "MalformedCertificate" => {
                assert!(err.is_malformed_certificate_exception(), "{err:?}")
            }
            "KeyPairMismatch" => assert!(err.is_key_pair_mismatch_exception(), "{err:?}"),
            "EntityAlreadyExists" => assert!(err.is_entity_already_exists_exception(), "{err:?}"),
            _ => {}
        }
        assert_eq!(node.list().await, state, "{} changed the state", case.what);
    }
    // The certificate whose name was taken is untouched.
    assert_eq!(
        node.get("taken").await.certificate_body().trim(),
        other_body.trim()
    );

    // After all that, the good upload goes through.
    node.upload("www", None, &good_body, &good_key, Some(&chain.chain_pem()))
        .await;
}

#[tokio::test]
async fn an_expired_certificate_is_accepted_as_iam_does() {
    // IAM uploads expired certificates (and reports their Expiration); fulcrum does the same.
    let node = Node::start().await;
    let ca = TestCa::new("fulcrum iam test CA");
    let (body, key) = ca.issue_expired(&[HOST]);
    let meta = node.upload("old", None, &body, &key, None).await;
    assert_eq!(
        meta.expiration().map(|d| d.secs()),
        Some(rcgen::date_time_ymd(2001, 1, 1).unix_timestamp()),
        "Expiration is the notAfter, 2001-01-01T00:00:00Z"
    );
    assert_eq!(node.get("old").await.certificate_body().trim(), body.trim());
}

#[tokio::test]

async fn an_upload_with_more_than_50_tags_is_limit_exceeded() {
    let node = Node::start().await;
    let ca = TestCa::new("fulcrum iam test CA");
    let (body, key) = ca.issue(&[HOST]);
    let tags: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
    let (_, status) = refused(
        "an upload with 51 tags",
        node.iam
            .upload_server_certificate()
            .server_certificate_name("many-tags")
            .certificate_body(&body)
            .private_key(&key)
            .set_tags(Some(tags))
            .send()
            .await,
        "LimitExceeded",
    );
    assert_eq!(status, 409);
    assert_eq!(node.list().await, [], "nothing was created");
}

#[tokio::test]

async fn an_upload_with_an_invalid_tag_is_refused() {
    let node = Node::start().await;
    let ca = TestCa::new("fulcrum iam test CA");
    let (body, key) = ca.issue(&[HOST]);
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    for (what, bad) in [
        ("an empty tag key", tag("", "v")),
        ("a tag key of 129 characters", tag(&long_key, "v")),
        ("a tag value of 257 characters", tag("k", &long_value)),
    ] {
        let err = node
            .iam
            .upload_server_certificate()
            .server_certificate_name("bad-tag")
            .certificate_body(&body)
            .private_key(&key)
            .tags(bad)
            .send()
            .await
            .expect_err(what);
        // TagServerCertificate refuses the same tags with ValidationError (AWS: InvalidInput).
        assert!(
            matches!(err.code(), Some("ValidationError" | "InvalidInput")),
            "{what}: {}",
            DisplayErrorContext(&err)
        );
        assert_eq!(node.list().await, [], "{what} created a certificate");
    }
}

// ---------------------------------------------------------------------------------------------
// ListServerCertificates.

#[tokio::test]
async fn list_server_certificates_filters_by_path_prefix_and_pages() {
    let node = Node::start().await;
    let ca = TestCa::new("fulcrum iam test CA");
    let certs = [
        ("/", "a"),
        ("/prod/", "b"),
        ("/prod/", "c"),
        ("/prod/eu/", "d"),
        ("/staging/", "e"),
    ];
    for (path, name) in certs {
        let (body, key) = ca.issue(&[HOST]);
        node.upload(name, Some(path), &body, &key, None).await;
    }

    let names_under = |prefix: &'static str| {
        let iam = node.iam.clone();
        async move {
            let out = iam
                .list_server_certificates()
                .path_prefix(prefix)
                .send()
                .await
                .unwrap_or_else(|e| panic!("list {prefix}: {}", DisplayErrorContext(&e)));
            assert!(!out.is_truncated());
            out.server_certificate_metadata_list()
                .iter()
                .map(|m| m.server_certificate_name().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names_under("/").await, ["a", "b", "c", "d", "e"]);
    assert_eq!(names_under("/prod/").await, ["b", "c", "d"]);
    assert_eq!(names_under("/prod/eu/").await, ["d"]);
    assert_eq!(names_under("/staging/").await, ["e"]);
    assert_eq!(names_under("/none/").await, Vec::<String>::new());

    // Two at a time, following Marker while IsTruncated: each exactly once.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = node
            .iam
            .list_server_certificates()
            .max_items(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("list page {pages}: {}", DisplayErrorContext(&e)));
        pages += 1;
        let page = out.server_certificate_metadata_list();
        assert!(page.len() <= 2, "{out:?}");
        seen.extend(page.iter().map(|m| m.server_certificate_name().to_owned()));
        if !out.is_truncated() {
            assert_eq!(out.marker(), None, "a last page has no Marker: {out:?}");
            break;
        }
        assert_eq!(page.len(), 2, "a truncated page is full: {out:?}");
        marker = Some(
            out.marker()
                .expect("a truncated page has a Marker")
                .to_owned(),
        );
        assert!(pages < 10, "the pages never end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);

    // Pages within a path prefix.
    let first = node
        .iam
        .list_server_certificates()
        .path_prefix("/prod/")
        .max_items(2)
        .send()
        .await
        .expect("first /prod/ page");
    assert!(first.is_truncated());
    let second = node
        .iam
        .list_server_certificates()
        .path_prefix("/prod/")
        .max_items(2)
        .marker(first.marker().expect("marker"))
        .send()
        .await
        .expect("second /prod/ page");
    assert!(!second.is_truncated());
    let prod: Vec<_> = first
        .server_certificate_metadata_list()
        .iter()
        .chain(second.server_certificate_metadata_list())
        .map(|m| m.server_certificate_name().to_owned())
        .collect();
    assert_eq!(prod, ["b", "c", "d"]);

    // The SDK's paginator gets the same, page by page.
    let items: Vec<_> = node
        .iam
        .list_server_certificates()
        .into_paginator()
        .page_size(2)
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap_or_else(|e| panic!("paginator: {}", DisplayErrorContext(&e)));
    let names: Vec<_> = items
        .iter()
        .map(|m| m.server_certificate_name().to_owned())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    let unique: BTreeSet<_> = items.iter().map(|m| m.server_certificate_id()).collect();
    assert_eq!(unique.len(), 5);

    // Out-of-range MaxItems and a marker this API never gave.
    let (_, status) = refused(
        "MaxItems=0",
        node.iam
            .list_server_certificates()
            .max_items(0)
            .send()
            .await,
        "ValidationError",
    );
    assert_eq!(status, 400);
    refused(
        "MaxItems=1001",
        node.iam
            .list_server_certificates()
            .max_items(1001)
            .send()
            .await,
        "ValidationError",
    );
    refused(
        "a made-up Marker",
        node.iam
            .list_server_certificates()
            .marker("not-a-marker")
            .send()
            .await,
        "ValidationError",
    );
}

#[tokio::test]

async fn a_marker_survives_a_deletion_between_pages() {
    let node = Node::start().await;
    let ca = TestCa::new("fulcrum iam test CA");
    for name in ["a", "b", "c", "d", "e"] {
        let (body, key) = ca.issue(&[HOST]);
        node.upload(name, None, &body, &key, None).await;
    }
    let first = node
        .iam
        .list_server_certificates()
        .max_items(2)
        .send()
        .await
        .expect("first page");
    let mut seen: Vec<String> = first
        .server_certificate_metadata_list()
        .iter()
        .map(|m| m.server_certificate_name().to_owned())
        .collect();
    assert_eq!(seen, ["a", "b"]);
    // Someone else deletes a certificate of the first page meanwhile.
    node.iam
        .delete_server_certificate()
        .server_certificate_name("a")
        .send()
        .await
        .expect("delete a");
    let mut marker = first.marker().map(str::to_owned);
    while let Some(m) = marker {
        let out = node
            .iam
            .list_server_certificates()
            .max_items(2)
            .marker(m)
            .send()
            .await
            .expect("next page");
        seen.extend(
            out.server_certificate_metadata_list()
                .iter()
                .map(|m| m.server_certificate_name().to_owned()),
        );
        marker = out.marker().map(str::to_owned);
    }
    // Every certificate that existed throughout is listed exactly once.
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
}

// ---------------------------------------------------------------------------------------------
// UpdateServerCertificate and DeleteServerCertificate, with listeners using the certificate.

#[tokio::test]
async fn a_renamed_and_moved_certificate_keeps_serving_its_listener() {
    let node = Node::start().await;
    let chain = Chain::new("rename");
    let (body, key) = chain.leaf();
    let original = node
        .upload("www", None, &body, &key, Some(&chain.chain_pem()))
        .await;
    let ca = TestCa::new("fulcrum iam test CA");
    let (other_body, other_key) = ca.issue(&[HOST]);
    node.upload("other", None, &other_body, &other_key, None)
        .await;

    node.elb
        .create_load_balancer()
        .load_balancer_name("web")
        .listeners(https_listener(18443, &arn("/", "www")))
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateLoadBalancer: {}",
                elb::error::DisplayErrorContext(&e)
            )
        });
    // Real TLS, verified up to the root: the listener serves the leaf and its chain.
    node.wait_tls_certificate(18443, &chain.root_pem, &body)
        .await;
    let revision = node.applied_revision().await;

    node.iam
        .update_server_certificate()
        .server_certificate_name("www")
        .new_server_certificate_name("www-2031")
        .new_path("/prod/")
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateServerCertificate: {}", DisplayErrorContext(&e)));

    // The certificate is the same one under its new name and path.
    let moved = node.get("www-2031").await;
    let meta = moved.server_certificate_metadata().expect("metadata");
    assert_eq!(meta.path(), "/prod/");
    assert_eq!(meta.arn(), arn("/prod/", "www-2031"));
    assert_eq!(
        meta.server_certificate_id(),
        original.server_certificate_id()
    );
    assert_eq!(meta.upload_date(), original.upload_date());
    assert_eq!(moved.certificate_body().trim(), body.trim());
    refused(
        "GetServerCertificate of the old name",
        node.iam
            .get_server_certificate()
            .server_certificate_name("www")
            .send()
            .await,
        "NoSuchEntity",
    );

    // The listener follows: DescribeLoadBalancers names the new ARN.
    let lbs = node
        .elb
        .describe_load_balancers()
        .load_balancer_names("web")
        .send()
        .await
        .expect("DescribeLoadBalancers");
    let listener = lbs.load_balancer_descriptions()[0].listener_descriptions()[0]
        .listener()
        .expect("listener")
        .clone();
    assert_eq!(
        listener.ssl_certificate_id(),
        Some(arn("/prod/", "www-2031").as_str())
    );
    // And the data plane, once it has applied the change, still serves the same certificate.
    node.wait_applied_after(revision).await;
    node.assert_tls_certificate(18443, &chain.root_pem, &body)
        .await;

    // The old ARN no longer names anything; the new one does.
    let err = node
        .elb
        .set_load_balancer_listener_ssl_certificate()
        .load_balancer_name("web")
        .load_balancer_port(18443)
        .ssl_certificate_id(arn("/", "www"))
        .send()
        .await
        .expect_err("the old ARN must not be found");
    assert_eq!(
        elb::error::ProvideErrorMetadata::code(&err),
        Some("CertificateNotFound"),
        "{}",
        elb::error::DisplayErrorContext(&err)
    );
    node.elb
        .set_load_balancer_listener_ssl_certificate()
        .load_balancer_name("web")
        .load_balancer_port(18443)
        .ssl_certificate_id(arn("/prod/", "www-2031"))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "SetLoadBalancerListenerSSLCertificate with the new ARN: {}",
                elb::error::DisplayErrorContext(&e)
            )
        });

    // Only the path, then only the name.
    node.iam
        .update_server_certificate()
        .server_certificate_name("www-2031")
        .new_path("/")
        .send()
        .await
        .expect("re-path only");
    assert_eq!(
        node.get("www-2031")
            .await
            .server_certificate_metadata()
            .expect("metadata")
            .arn(),
        arn("/", "www-2031")
    );
    node.iam
        .update_server_certificate()
        .server_certificate_name("www-2031")
        .new_server_certificate_name("www")
        .send()
        .await
        .expect("rename only");
    assert_eq!(
        node.get("www")
            .await
            .server_certificate_metadata()
            .expect("metadata")
            .path(),
        "/"
    );

    // Refusals, which change nothing.
    let state = node.list().await;
    let (err, status) = refused(
        "renaming onto an existing name",
        node.iam
            .update_server_certificate()
            .server_certificate_name("www")
            .new_server_certificate_name("other")
            .send()
            .await,
        "EntityAlreadyExists",
    );
    assert!(err.is_entity_already_exists_exception(), "{err:?}");
    assert_eq!(status, 409);
    let (err, status) = refused(
        "renaming an unknown certificate",
        node.iam
            .update_server_certificate()
            .server_certificate_name("nope")
            .new_server_certificate_name("nope-2")
            .send()
            .await,
        "NoSuchEntity",
    );
    assert!(err.is_no_such_entity_exception(), "{err:?}");
    assert_eq!(status, 404);
    refused(
        "renaming to a bad name",
        node.iam
            .update_server_certificate()
            .server_certificate_name("www")
            .new_server_certificate_name("bad name")
            .send()
            .await,
        "ValidationError",
    );
    refused(
        "moving to a bad path",
        node.iam
            .update_server_certificate()
            .server_certificate_name("www")
            .new_path("prod")
            .send()
            .await,
        "ValidationError",
    );
    refused(
        "a valid new name with a bad new path",
        node.iam
            .update_server_certificate()
            .server_certificate_name("www")
            .new_server_certificate_name("www-3")
            .new_path("/prod")
            .send()
            .await,
        "ValidationError",
    );
    assert_eq!(node.list().await, state);
    node.assert_tls_certificate(18443, &chain.root_pem, &body)
        .await;
}

#[tokio::test]
async fn a_certificate_in_use_cannot_be_deleted() {
    let node = Node::start().await;
    let ca = TestCa::new("fulcrum iam test CA");
    let (body, key) = ca.issue(&[HOST]);
    node.upload("www", Some("/prod/"), &body, &key, None).await;
    node.elb
        .create_load_balancer()
        .load_balancer_name("web")
        .listeners(https_listener(18443, &arn("/prod/", "www")))
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateLoadBalancer: {}",
                elb::error::DisplayErrorContext(&e)
            )
        });

    let (err, status) = refused(
        "deleting a certificate a listener uses",
        node.iam
            .delete_server_certificate()
            .server_certificate_name("www")
            .send()
            .await,
        "DeleteConflict",
    );
    assert!(err.is_delete_conflict_exception(), "{err:?}");
    assert_eq!(status, 409);
    assert_eq!(node.get("www").await.certificate_body().trim(), body.trim());
    node.wait_tls_certificate(18443, &ca.cert_pem(), &body)
        .await;

    node.elb
        .delete_load_balancer_listeners()
        .load_balancer_name("web")
        .load_balancer_ports(18443)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "DeleteLoadBalancerListeners: {}",
                elb::error::DisplayErrorContext(&e)
            )
        });
    node.iam
        .delete_server_certificate()
        .server_certificate_name("www")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteServerCertificate: {}", DisplayErrorContext(&e)));
    assert_eq!(node.list().await, []);
    let (err, status) = refused(
        "deleting it again",
        node.iam
            .delete_server_certificate()
            .server_certificate_name("www")
            .send()
            .await,
        "NoSuchEntity",
    );
    assert!(err.is_no_such_entity_exception(), "{err:?}");
    assert_eq!(status, 404);
    refused(
        "getting it",
        node.iam
            .get_server_certificate()
            .server_certificate_name("www")
            .send()
            .await,
        "NoSuchEntity",
    );
    // The name is free again.
    let (body, key) = ca.issue(&[HOST]);
    node.upload("www", None, &body, &key, None).await;
}

// ---------------------------------------------------------------------------------------------
// Tags.

#[tokio::test]
async fn certificate_tags_are_added_listed_and_removed() {
    let node = Node::start().await;
    let ca = TestCa::new("fulcrum iam test CA");
    let (body, key) = ca.issue(&[HOST]);
    node.upload("www", None, &body, &key, None).await;
    assert_eq!(node.tags("www").await, []);

    node.iam
        .tag_server_certificate()
        .server_certificate_name("www")
        .tags(tag("team", "edge"))
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("TagServerCertificate: {}", DisplayErrorContext(&e)));
    assert_eq!(
        node.tags("www").await,
        // Tags are kept and listed by key.
        [
            ("env".into(), "prod".into()),
            ("team".into(), "edge".into())
        ]
    );
    // A known key is overwritten, a new one added.
    node.iam
        .tag_server_certificate()
        .server_certificate_name("www")
        .tags(tag("env", "staging"))
        .tags(tag("owner", ""))
        .send()
        .await
        .expect("retag");
    assert_eq!(
        node.tags("www").await,
        [
            ("env".into(), "staging".into()),
            ("owner".into(), String::new()),
            ("team".into(), "edge".into())
        ]
    );
    // Untagging removes the keys named; unknown keys are ignored.
    node.iam
        .untag_server_certificate()
        .server_certificate_name("www")
        .tag_keys("team")
        .tag_keys("never-set")
        .send()
        .await
        .unwrap_or_else(|e| panic!("UntagServerCertificate: {}", DisplayErrorContext(&e)));
    assert_eq!(
        node.tags("www").await,
        [
            ("env".into(), "staging".into()),
            ("owner".into(), String::new())
        ]
    );

    // Up to 50 tags; the 51st is LimitExceeded and changes nothing.
    let many: Vec<Tag> = (0..48).map(|i| tag(&format!("k{i:02}"), "v")).collect();
    node.iam
        .tag_server_certificate()
        .server_certificate_name("www")
        .set_tags(Some(many))
        .send()
        .await
        .expect("50 tags in all");
    let fifty = node.tags("www").await;
    assert_eq!(fifty.len(), 50);
    let (err, status) = refused(
        "a 51st tag",
        node.iam
            .tag_server_certificate()
            .server_certificate_name("www")
            .tags(tag("one-too-many", "v"))
            .send()
            .await,
        "LimitExceeded",
    );
    assert!(err.is_limit_exceeded_exception(), "{err:?}");
    assert_eq!(status, 409);
    assert_eq!(node.tags("www").await, fifty);
    // Overwriting one of the 50 is no new tag.
    node.iam
        .tag_server_certificate()
        .server_certificate_name("www")
        .tags(tag("k00", "w"))
        .send()
        .await
        .expect("overwrite at 50 tags");

    // ListServerCertificateTags pages like the other lists.
    let first = node
        .iam
        .list_server_certificate_tags()
        .server_certificate_name("www")
        .max_items(30)
        .send()
        .await
        .expect("first tag page");
    assert!(first.is_truncated());
    let second = node
        .iam
        .list_server_certificate_tags()
        .server_certificate_name("www")
        .max_items(30)
        .marker(first.marker().expect("marker"))
        .send()
        .await
        .expect("second tag page");
    assert!(!second.is_truncated());
    assert_eq!(first.tags().len() + second.tags().len(), 50);
    let keys: BTreeSet<_> = first
        .tags()
        .iter()
        .chain(second.tags())
        .map(|t| t.key().to_owned())
        .collect();
    assert_eq!(keys.len(), 50);

    // Invalid tags are refused, and change nothing.
    let tags_before = node.tags("www").await;
    for (what, bad) in [
        ("an empty tag key", tag("", "v")),
        ("a tag key of 129 characters", tag(&"k".repeat(129), "v")),
        (
            "a tag value of 257 characters",
            tag("k00", &"v".repeat(257)),
        ),
    ] {
        let (_, status) = refused(
            what,
            node.iam
                .tag_server_certificate()
                .server_certificate_name("www")
                .tags(bad)
                .send()
                .await,
            "ValidationError",
        );
        assert_eq!(status, 400);
    }
    assert_eq!(node.tags("www").await, tags_before);

    // Unknown certificates.
    let (err, status) = refused(
        "tagging an unknown certificate",
        node.iam
            .tag_server_certificate()
            .server_certificate_name("nope")
            .tags(tag("a", "b"))
            .send()
            .await,
        "NoSuchEntity",
    );
    assert!(err.is_no_such_entity_exception(), "{err:?}");
    assert_eq!(status, 404);
    refused(
        "untagging an unknown certificate",
        node.iam
            .untag_server_certificate()
            .server_certificate_name("nope")
            .tag_keys("a")
            .send()
            .await,
        "NoSuchEntity",
    );
    refused(
        "listing the tags of an unknown certificate",
        node.iam
            .list_server_certificate_tags()
            .server_certificate_name("nope")
            .send()
            .await,
        "NoSuchEntity",
    );
}

// ---------------------------------------------------------------------------------------------
// Access keys.

#[tokio::test]
async fn access_keys_are_created_listed_and_deleted() {
    let node = Node::start().await;

    let out = node
        .iam
        .create_access_key()
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateAccessKey: {}", DisplayErrorContext(&e)));
    let key = out.access_key().expect("AccessKey");
    let (second_id, second_secret) = (
        key.access_key_id().to_owned(),
        key.secret_access_key().to_owned(),
    );
    assert_eq!(key.status().as_str(), "Active");
    assert!(
        !second_id.is_empty() && !second_secret.is_empty(),
        "{key:?}"
    );
    assert_ne!(second_id, node.key_id);
    assert_ne!(second_secret, node.secret);

    // The second key signs calls, to IAM and to ELB alike.
    let second = iam_client(node.api(), &second_id, &second_secret);
    second
        .list_server_certificates()
        .send()
        .await
        .unwrap_or_else(|e| panic!("a call signed by the new key: {}", DisplayErrorContext(&e)));
    elb_client(node.api(), &second_id, &second_secret)
        .describe_load_balancers()
        .send()
        .await
        .expect("an ELB call signed by the new key");

    // ListAccessKeys shows both, never a secret.
    let raw = RawBody::default();
    let listed = node
        .iam
        .list_access_keys()
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListAccessKeys: {}", DisplayErrorContext(&e)));
    let ids: BTreeSet<_> = listed
        .access_key_metadata()
        .iter()
        .map(|k| k.access_key_id().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([node.key_id.clone(), second_id.clone()])
    );
    assert!(listed
        .access_key_metadata()
        .iter()
        .all(|k| k.status().map(|s| s.as_str()) == Some("Active")));
    let xml = raw.text();
    assert!(xml.contains(&second_id), "{xml}");
    assert!(
        !xml.contains(&second_secret) && !xml.contains(&node.secret),
        "ListAccessKeys returns a secret:\n{xml}"
    );
    assert!(!xml.contains("SecretAccessKey"), "{xml}");

    // Deleting the admin key with the second one: the admin key is then refused.
    node.iam
        .delete_access_key()
        .access_key_id(&node.key_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteAccessKey: {}", DisplayErrorContext(&e)));
    let (_, status) = refused(
        "a call signed by the deleted key",
        node.iam.list_server_certificates().send().await,
        "InvalidClientTokenId",
    );
    assert_eq!(status, 403);
    let listed = second.list_access_keys().send().await.expect("list");
    assert_eq!(
        listed
            .access_key_metadata()
            .iter()
            .map(|k| k.access_key_id().unwrap_or_default())
            .collect::<Vec<_>>(),
        [second_id.as_str()]
    );

    // The last active key cannot be deleted: no one could call the API any more.
    let (err, status) = refused(
        "deleting the last active key",
        second
            .delete_access_key()
            .access_key_id(&second_id)
            .send()
            .await,
        "DeleteConflict",
    );
    // IAM's DeleteAccessKey models no DeleteConflict (AWS has no such refusal), so the SDK
    // reports it by its code only.
    assert!(err.meta().code() == Some("DeleteConflict"), "{err:?}");
    assert_eq!(status, 409);
    second
        .list_server_certificates()
        .send()
        .await
        .expect("the last key still works");

    // Unknown and already deleted keys.
    let (err, status) = refused(
        "deleting an unknown key",
        second
            .delete_access_key()
            .access_key_id("AKIAUNKNOWNUNKNOWN00")
            .send()
            .await,
        "NoSuchEntity",
    );
    assert!(err.is_no_such_entity_exception(), "{err:?}");
    assert_eq!(status, 404);
    refused(
        "deleting the deleted key again",
        second
            .delete_access_key()
            .access_key_id(&node.key_id)
            .send()
            .await,
        "NoSuchEntity",
    );
}

#[tokio::test]
async fn read_only_keys_only_read_and_every_change_is_audited_without_a_secret() {
    let mut node = Node::start().await;
    // fulcrum's IAM users are its key scopes.
    let out = node
        .iam
        .create_access_key()
        .user_name("read-only")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateAccessKey read-only: {}", DisplayErrorContext(&e)));
    let key = out.access_key().expect("AccessKey");
    assert_eq!(key.user_name(), "read-only");
    let (ro_id, ro_secret) = (
        key.access_key_id().to_owned(),
        key.secret_access_key().to_owned(),
    );
    refused(
        "a key for a user fulcrum does not have",
        node.iam.create_access_key().user_name("bob").send().await,
        "NoSuchEntity",
    );

    // The read-only key reads ELB and IAM...
    let (ro_elb, ro_iam) = (
        elb_client(node.api(), &ro_id, &ro_secret),
        iam_client(node.api(), &ro_id, &ro_secret),
    );
    ro_elb
        .describe_load_balancers()
        .send()
        .await
        .expect("a read-only key describes");
    let listed = ro_iam.list_access_keys().send().await.expect("and lists");
    let scopes: BTreeSet<_> = listed
        .access_key_metadata()
        .iter()
        .map(|k| k.user_name().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(scopes, BTreeSet::from(["admin".into(), "read-only".into()]));
    // With a UserName, IAM lists that user's keys only.
    let only_ro = ro_iam
        .list_access_keys()
        .user_name("read-only")
        .send()
        .await
        .expect("ListAccessKeys of one user");
    assert!(!only_ro.access_key_metadata().is_empty());
    assert!(
        only_ro
            .access_key_metadata()
            .iter()
            .all(|k| k.user_name() == Some("read-only")),
        "{only_ro:?}"
    );
    let (_, status) = refused(
        "ListAccessKeys of a user that does not exist",
        ro_iam.list_access_keys().user_name("nobody").send().await,
        "NoSuchEntity",
    );
    assert_eq!(status, 404);
    // ...and changes nothing, with AWS's AccessDenied.
    let (err, status) = refused(
        "a change by a read-only key",
        ro_elb
            .delete_load_balancer()
            .load_balancer_name("web")
            .send()
            .await,
        "AccessDenied",
    );
    assert_eq!(status, 403);
    assert!(
        err.meta()
            .message()
            .is_some_and(|m| m.contains("elasticloadbalancing:DeleteLoadBalancer")),
        "{err:?}"
    );
    refused(
        "a read-only key deleting the admin key",
        ro_iam
            .delete_access_key()
            .access_key_id(&node.key_id)
            .send()
            .await,
        "AccessDenied",
    );
    // The last admin key cannot go, even with a read-only key beside it.
    refused(
        "deleting the last admin key",
        node.iam
            .delete_access_key()
            .access_key_id(&node.key_id)
            .send()
            .await,
        "DeleteConflict",
    );

    // A change that carries a private key, audited.
    let ca = TestCa::new("audit CA");
    let (body, private_key) = ca.issue(&["audit.example.test"]);
    node.upload("audit-www", None, &body, &private_key, None)
        .await;
    node.fulcrum.stop().await;
    let log = format!(
        "{}{}",
        node.fulcrum.stderr.text(),
        node.fulcrum.stdout.text()
    );
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("fulcrum::audit"))
        .collect();
    let upload = audit
        .iter()
        .find(|l| l.contains("UploadServerCertificate"))
        .unwrap_or_else(|| panic!("no audit line for the upload:\n{log}"));
    assert!(upload.contains(&node.key_id), "{upload}");
    assert!(
        upload.contains("ServerCertificateName=audit-www"),
        "{upload}"
    );
    assert!(upload.contains("ok"), "{upload}");
    let denied = audit
        .iter()
        .find(|l| l.contains("DeleteLoadBalancer"))
        .unwrap_or_else(|| panic!("no audit line for the refused change:\n{log}"));
    assert!(
        denied.contains(&ro_id) && denied.contains("AccessDenied"),
        "{denied}"
    );
    assert!(
        !audit.iter().any(|l| l.contains("DescribeLoadBalancers")),
        "reads are not audited"
    );
    // No secret anywhere in the whole log: not the key, not an access-key secret.
    let key_lines: Vec<&str> = private_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for secret in key_lines
        .iter()
        .copied()
        .chain([node.secret.as_str(), ro_secret.as_str()])
    {
        assert!(!log.contains(secret), "a secret is in the log:\n{log}");
    }
}
