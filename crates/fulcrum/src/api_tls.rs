//! TLS for the API. `UploadServerCertificate` carries a private key in its body: SigV4 protects
//! the secret key, not the payload, so off loopback the API speaks only TLS. The certificate is
//! the operator's (`--api-tls-cert`/`--api-tls-key`, files or the name of an uploaded
//! certificate), or one that `serve` signs itself with a CA whose key is kept sealed in the store
//! and whose certificate it writes to `DIR/api-ca.pem` for clients to trust.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::ValueEnum;
use fulcrum_store::{Store, API_CA_KEY};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::ServerConfig;
use zeroize::Zeroizing;

/// The file beside the credentials that clients trust the API's self-signed certificate with.
pub const CA_FILE: &str = "api-ca.pem";

/// `--api-tls`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiTlsMode {
    /// Plain HTTP on a loopback address, TLS (self-signed unless a certificate is given)
    /// anywhere else.
    Auto,
    /// TLS with the self-signed certificate, even on loopback.
    SelfSigned,
    /// Plain HTTP; refused off loopback.
    Off,
}

/// Refuses plain HTTP off loopback, before anything else is started.
pub fn refuse_plain(
    api: SocketAddr,
    mode: ApiTlsMode,
    cert: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<()> {
    if mode == ApiTlsMode::Off && cert.is_none() && !api.ip().is_loopback() {
        bail!(
            "refusing plain HTTP for the API on {api}: its calls carry private keys \
             (UploadServerCertificate) and would cross the network in the clear. Give the API a \
             certificate with --api-tls-cert and --api-tls-key, or leave --api-tls at auto for \
             a self-signed one (clients trust it with {})",
            data_dir.join(CA_FILE).display()
        );
    }
    Ok(())
}

/// The API's TLS, or `None` for plain HTTP (on loopback only).
pub fn configure(
    api: SocketAddr,
    mode: ApiTlsMode,
    cert: Option<&str>,
    key: Option<&Path>,
    store: &Store,
    data_dir: &Path,
) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    refuse_plain(api, mode, cert, data_dir)?;
    if let Some(cert) = cert {
        return operator_certificate(cert, key, store).map(Some);
    }
    match mode {
        ApiTlsMode::Off => Ok(None),
        ApiTlsMode::Auto if api.ip().is_loopback() => Ok(None),
        ApiTlsMode::Auto | ApiTlsMode::SelfSigned => self_signed(api, store, data_dir).map(Some),
    }
}

/// `--api-tls-cert` as PEM files, or as the name of a certificate uploaded to fulcrum.
fn operator_certificate(
    cert: &str,
    key: Option<&Path>,
    store: &Store,
) -> anyhow::Result<Arc<ServerConfig>> {
    let path = Path::new(cert);
    let (body, chain, key_pem) = if path.is_file() {
        let key = key.context("--api-tls-cert is a file: --api-tls-key must name its key file")?;
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let key_pem = Zeroizing::new(
            std::fs::read_to_string(key)
                .with_context(|| format!("cannot read {}", key.display()))?,
        );
        (pem, None, key_pem)
    } else {
        let snapshot = store.snapshot();
        let uploaded = snapshot.state.certificate_by_name(cert).with_context(|| {
            format!("--api-tls-cert {cert}: neither a file nor an uploaded certificate's name")
        })?;
        (
            uploaded.body_pem.clone(),
            uploaded.chain_pem.clone(),
            Zeroizing::new(uploaded.private_key.expose().to_owned()),
        )
    };
    let imported = fulcrum_tls::import_certificate(&body, &key_pem, chain.as_deref())
        .with_context(|| format!("--api-tls-cert {cert}"))?;
    server_config(imported.certified_key)
}

/// A certificate for the API signed by fulcrum's own CA, for every name clients may use.
fn self_signed(
    api: SocketAddr,
    store: &Store,
    data_dir: &Path,
) -> anyhow::Result<Arc<ServerConfig>> {
    let ca_key_pem = store.node_secret(API_CA_KEY, || {
        let key = KeyPair::generate().map_err(|e| {
            fulcrum_store::StoreError::Crypto(format!("generating the API's CA key: {e}"))
        })?;
        Ok(Zeroizing::new(key.serialize_pem().into_bytes()))
    })?;
    let ca_key_pem = std::str::from_utf8(&ca_key_pem).context("the API's CA key is not PEM")?;
    let ca_key = KeyPair::from_pem(ca_key_pem).context("the API's CA key is unreadable")?;
    // The same name and key at every start: a CA file written by an earlier start still
    // verifies the certificates of this one.
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "fulcrum API CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).context("signing the API's CA")?;

    let mut names = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress([127, 0, 0, 1].into()),
        SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
    ];
    if !api.ip().is_unspecified() && !api.ip().is_loopback() {
        names.push(SanType::IpAddress(api.ip()));
    }
    if let Some(host) = hostname() {
        if let Ok(name) = host.clone().try_into() {
            names.push(SanType::DnsName(name));
        }
    }
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, "fulcrum API");
    leaf.subject_alt_names = names;
    let leaf_key = KeyPair::generate().context("generating the API's key")?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .context("signing the API's certificate")?;

    let ca_file = data_dir.join(CA_FILE);
    std::fs::write(&ca_file, ca_cert.pem())
        .with_context(|| format!("cannot write {}", ca_file.display()))?;
    let key_pem = Zeroizing::new(leaf_key.serialize_pem());
    let imported = fulcrum_tls::import_certificate(&leaf_cert.pem(), &key_pem, None)
        .context("the API's own certificate")?;
    server_config(imported.certified_key)
}

fn server_config(key: Arc<rustls::sign::CertifiedKey>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(fulcrum_tls::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("rustls refused TLS 1.2 and 1.3")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The machine's host name, for the certificate's names.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// How clients reach the API, for the lines `serve` prints: the URL and the aws CLI's options.
pub fn endpoint(api: SocketAddr, tls: bool, data_dir: &Path) -> (String, String) {
    if !tls {
        return (format!("http://{api}"), String::new());
    }
    let host = if api.ip().is_unspecified() {
        format!("localhost:{}", api.port())
    } else {
        api.to_string()
    };
    let ca: PathBuf = data_dir.join(CA_FILE);
    (
        format!("https://{host}"),
        format!(" --ca-bundle {}", ca.display()),
    )
}
