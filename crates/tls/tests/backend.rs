//! The balancer as a TLS client of its instances: real rustls handshakes in memory between
//! `backend_client_config` and instance servers built here (self-signed, pinned, forged, mTLS).
mod common;

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use common::*;
use fulcrum_tls::{
    backend_client_config, certificate_public_key, check_client_certificate, crypto_provider,
    import_certificate, parse_public_key, self_signed, BackendTlsSettings, ImportedCertificate,
    InstanceCertVerifier, InstanceCertificateError, TlsError,
};
use rustls::client::ClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConnection, HandshakeKind, ProtocolVersion, RootCertStore, ServerConfig,
    ServerConnection, SupportedProtocolVersion,
};

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const VERSIONS: [&[&SupportedProtocolVersion]; 2] = [TLS13, TLS12];
const HTTP1: &[&[u8]] = &[b"http/1.1"];

/// An instance's certificate and key, self-signed unless said otherwise.
struct Instance {
    cert_pem: String,
    cert_der: Vec<u8>,
    key: Arc<CertifiedKey>,
}

fn self_signed_instance() -> Instance {
    let (cert_pem, key_pem) = self_signed(&["instance.internal".to_string()]).unwrap();
    instance_from_pem(cert_pem, &key_pem)
}

fn instance_from_pem(cert_pem: String, key_pem: &str) -> Instance {
    let imported = import_certificate(&cert_pem, key_pem, None).unwrap();
    Instance {
        cert_der: imported.certified_key.cert[0].as_ref().to_vec(),
        cert_pem,
        key: imported.certified_key,
    }
}

/// Serves one certificate whatever the client asks, as an instance does.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn instance_server(
    key: Arc<CertifiedKey>,
    versions: &[&'static SupportedProtocolVersion],
    client_roots: Option<&Ca>,
) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = match client_roots {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.cert.der().clone()).unwrap();
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(Fixed(key)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn instance_address() -> ServerName<'static> {
    ServerName::from("10.0.0.5".parse::<IpAddr>().unwrap())
}

/// A full handshake to an instance known by its address; the client's error first, if any.
fn connect(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
    let mut c = ClientConnection::new(client.clone(), instance_address()).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    pump(&mut c, &mut s)?;
    assert!(!c.is_handshaking() && !s.is_handshaking());
    Ok((c, s))
}

fn settings_pinning(keys: Vec<Vec<u8>>) -> BackendTlsSettings {
    BackendTlsSettings {
        pinned_keys: keys,
        ..Default::default()
    }
}

fn another_key() -> Vec<u8> {
    key(&PKCS_ECDSA_P256_SHA256).public_key_der()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Base64 broken into 64-character lines, as openssl writes it.
fn wrapped_b64(data: &[u8]) -> String {
    b64(data)
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn any_self_signed_certificate_is_accepted_without_pins() {
    let client = backend_client_config(&BackendTlsSettings::default(), HTTP1).unwrap();
    let ecdsa = self_signed_instance();
    let root = ca("Instance Root", &PKCS_RSA_SHA256, None);
    let rsa = leaf(&["rsa.internal"], &PKCS_RSA_SHA256, &root);
    let rsa = instance_from_pem(rsa.cert_pem(), &rsa.key_pem());
    let ed = leaf(&["ed.internal"], &PKCS_ED25519, &root);
    let ed = instance_from_pem(ed.cert_pem(), &ed.key_pem());
    for instance in [&ecdsa, &rsa, &ed] {
        for versions in VERSIONS {
            let server = instance_server(instance.key.clone(), versions, None);
            let (c, s) = connect(&client, &server).unwrap();
            assert_eq!(
                c.peer_certificates().unwrap()[0].as_ref(),
                instance.cert_der
            );
            assert_eq!(c.protocol_version(), Some(versions[0].version));
            assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
            // An instance known by its address gets no SNI.
            assert_eq!(s.server_name(), None);
        }
    }
}

#[test]
fn expired_certificates_for_other_names_are_accepted_and_dns_names_get_sni() {
    let mut params = rcgen::CertificateParams::new(vec!["old.internal".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let key = key(&PKCS_ECDSA_P384_SHA384);
    let cert = params.self_signed(&key).unwrap();
    let instance = instance_from_pem(cert.pem(), &key.serialize_pem());

    let client = backend_client_config(&BackendTlsSettings::default(), &[]).unwrap();
    let server = instance_server(instance.key.clone(), TLS13, None);
    let mut c = ClientConnection::new(
        client.clone(),
        ServerName::try_from("app.example.com").unwrap(),
    )
    .unwrap();
    let mut s = ServerConnection::new(server).unwrap();
    pump(&mut c, &mut s).unwrap();
    assert!(!c.is_handshaking());
    assert_eq!(s.server_name(), Some("app.example.com"));
    // No ALPN for SSL instances.
    assert_eq!(c.alpn_protocol(), None);
}

#[test]
fn a_pinned_key_is_accepted_in_every_attribute_form() {
    let instance = self_signed_instance();
    let spki = certificate_public_key(&instance.cert_pem).unwrap();
    // The same bytes that the key pair reports as its public key.
    assert_eq!(
        spki,
        CertifiedKey::clone(&instance.key)
            .key
            .public_key()
            .unwrap()
            .as_ref()
    );

    let forms = [
        ("base64 DER public key", b64(&spki)),
        ("base64 DER public key, wrapped", wrapped_b64(&spki)),
        ("PEM public key", pem("PUBLIC KEY", &spki)),
        ("PEM certificate", instance.cert_pem.clone()),
        (
            "PEM certificate followed by its issuer",
            format!("{}{}", instance.cert_pem, self_signed_instance().cert_pem),
        ),
        ("base64 DER certificate", wrapped_b64(&instance.cert_der)),
        (
            "PEM public key with its line breaks lost",
            pem("PUBLIC KEY", &spki).replace('\n', " "),
        ),
        (
            "indented PEM with CRLFs",
            pem("PUBLIC KEY", &spki)
                .lines()
                .map(|l| format!("   {l}\r\n"))
                .collect(),
        ),
    ];
    for (form, attribute) in forms {
        let parsed = parse_public_key(&attribute).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(parsed, spki, "{form}");
        let client =
            backend_client_config(&settings_pinning(vec![another_key(), parsed]), HTTP1).unwrap();
        for versions in VERSIONS {
            let server = instance_server(instance.key.clone(), versions, None);
            connect(&client, &server).unwrap_or_else(|e| panic!("{form} {versions:?}: {e}"));
        }
    }
}

#[test]
fn a_pkcs1_rsa_public_key_is_accepted() {
    let root = ca("Instance Root", &PKCS_ECDSA_P256_SHA256, None);
    let rsa = leaf(&["rsa.internal"], &PKCS_RSA_SHA256, &root);
    let spki = rsa.key.public_key_der();
    // A 2048-bit RSA SubjectPublicKeyInfo: 4 + 15 bytes of header and algorithm, then a BIT
    // STRING of 271 bytes whose first says no bits are unused; the rest is the PKCS#1 key.
    assert_eq!(spki[19..24], [0x03, 0x82, 0x01, 0x0f, 0x00]);
    let pkcs1 = &spki[24..];
    assert_eq!(
        parse_public_key(&pem("RSA PUBLIC KEY", pkcs1)).unwrap(),
        spki
    );
    assert_eq!(parse_public_key(&b64(pkcs1)).unwrap(), spki);
    assert_eq!(certificate_public_key(&rsa.cert_pem()).unwrap(), spki);
}

#[test]
fn a_wrong_key_is_refused_with_the_policy_message() {
    let instance = self_signed_instance();
    let client = backend_client_config(&settings_pinning(vec![another_key()]), HTTP1).unwrap();
    for versions in VERSIONS {
        let server = instance_server(instance.key.clone(), versions, None);
        let err = connect(&client, &server).unwrap_err();
        assert!(
            err.to_string().contains(
                "the instance's certificate public key is not one of the backend \
                 authentication policy's keys"
            ),
            "{err}"
        );
        assert_eq!(
            InstanceCertificateError::of(&err),
            Some(&InstanceCertificateError::KeyNotPinned)
        );
        // What tokio-rustls hands the caller.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, err);
        assert_eq!(
            InstanceCertificateError::of_io(&io),
            Some(&InstanceCertificateError::KeyNotPinned)
        );
    }
}

/// A server that presents the certificate of key A but signs the handshake with key B: what
/// someone who copied an instance's certificate, but not its private key, would do.
fn forged_instance() -> (Instance, Arc<CertifiedKey>) {
    let genuine = self_signed_instance();
    let impostor_key = key(&PKCS_ECDSA_P256_SHA256);
    let signing_key = crypto_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            impostor_key.serialize_der(),
        )))
        .unwrap();
    // rustls checks that key and certificate match only in `with_single_cert`; a resolver can
    // hand it anything, so the forged server really does sign with the wrong key.
    let forged = CertifiedKey::new(
        vec![CertificateDer::from(genuine.cert_der.clone())],
        signing_key,
    );
    assert!(forged.keys_match().is_err());
    (genuine, Arc::new(forged))
}

#[test]
fn a_handshake_signed_with_another_key_is_refused_even_without_pins() {
    let (genuine, forged) = forged_instance();
    let pinned = certificate_public_key(&genuine.cert_pem).unwrap();
    for settings in [
        BackendTlsSettings::default(),
        settings_pinning(vec![pinned]),
    ] {
        let client = backend_client_config(&settings, HTTP1).unwrap();
        for versions in VERSIONS {
            // The genuine instance is fine…
            let server = instance_server(genuine.key.clone(), versions, None);
            connect(&client, &server).unwrap();
            // …the one that only has its certificate is not.
            let server = instance_server(forged.clone(), versions, None);
            let err = connect(&client, &server).unwrap_err();
            assert_eq!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature),
                "{versions:?} {settings:?}"
            );
        }
    }
}

struct Pki {
    ca: Ca,
    client: Arc<ImportedCertificate>,
}

fn new_pki() -> Pki {
    let ca = ca("Balancer Client CA", &PKCS_ECDSA_P256_SHA256, None);
    let client = leaf(&["balancer.internal"], &PKCS_ECDSA_P256_SHA256, &ca);
    let client = import_certificate(&client.cert_pem(), &client.key_pem(), None).unwrap();
    Pki {
        ca,
        client: Arc::new(client),
    }
}

#[test]
fn the_client_certificate_is_presented_to_an_instance_requiring_one() {
    let pki = new_pki();
    let instance = self_signed_instance();
    let with_cert = backend_client_config(
        &BackendTlsSettings {
            client_certificate: Some(pki.client.clone()),
            ..Default::default()
        },
        HTTP1,
    )
    .unwrap();
    let without_cert = backend_client_config(&BackendTlsSettings::default(), HTTP1).unwrap();
    let other_pki = new_pki();
    let with_other_cert = backend_client_config(
        &BackendTlsSettings {
            client_certificate: Some(other_pki.client.clone()),
            ..Default::default()
        },
        HTTP1,
    )
    .unwrap();
    for versions in VERSIONS {
        let server = instance_server(instance.key.clone(), versions, Some(&pki.ca));
        let (_, s) = connect(&with_cert, &server).unwrap();
        assert_eq!(
            s.peer_certificates().unwrap()[0],
            pki.client.certified_key.cert[0]
        );

        let err = connect(&without_cert, &server).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::NoCertificatesPresented | rustls::Error::AlertReceived(_)
            ),
            "{versions:?}: {err:?}"
        );
        let err = connect(&with_other_cert, &server).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(_) | rustls::Error::AlertReceived(_)
            ),
            "{versions:?}: {err:?}"
        );
    }
}

#[test]
fn a_server_only_certificate_cannot_be_the_client_certificate() {
    let ca = ca("Web CA", &PKCS_ECDSA_P256_SHA256, None);
    let mut params = rcgen::CertificateParams::new(vec!["www.example.com".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = key(&PKCS_ECDSA_P256_SHA256);
    let cert = params.clone().signed_by(&key, &ca.cert, &ca.key).unwrap();
    let imported = Arc::new(import_certificate(&cert.pem(), &key.serialize_pem(), None).unwrap());
    let err = check_client_certificate(&imported).unwrap_err();
    assert!(matches!(err, TlsError::Config(_)));
    assert!(err.to_string().contains("clientAuth"), "{err}");
    let settings = BackendTlsSettings {
        client_certificate: Some(imported),
        ..Default::default()
    };
    assert_eq!(backend_client_config(&settings, HTTP1).unwrap_err(), err);

    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let both = import_certificate(&cert.pem(), &key.serialize_pem(), None).unwrap();
    check_client_certificate(&both).unwrap();
}

#[test]
fn sessions_resume_with_a_reused_config() {
    let instance = self_signed_instance();
    let pinned = certificate_public_key(&instance.cert_pem).unwrap();
    for versions in VERSIONS {
        // One config per version: a TLS 1.3 ticket left for the same address would be offered
        // first to the TLS 1.2-only server.
        let client = backend_client_config(&settings_pinning(vec![pinned.clone()]), HTTP1).unwrap();
        let server = instance_server(instance.key.clone(), versions, None);
        let (c, _) = connect(&client, &server).unwrap();
        assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full));
        let (c, _) = connect(&client, &server).unwrap();
        assert_eq!(
            c.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{versions:?}"
        );
        assert_eq!(
            c.protocol_version(),
            Some(if versions == TLS13 {
                ProtocolVersion::TLSv1_3
            } else {
                ProtocolVersion::TLSv1_2
            })
        );
    }
}

#[test]
fn settings_compare_by_content() {
    let pki = new_pki();
    let same_cert_again = Arc::new(ImportedCertificate::clone(&pki.client));
    let a = BackendTlsSettings {
        pinned_keys: vec![vec![1, 2, 3]],
        client_certificate: Some(pki.client.clone()),
    };
    let b = BackendTlsSettings {
        pinned_keys: vec![vec![1, 2, 3]],
        client_certificate: Some(same_cert_again),
    };
    assert_eq!(a, b);
    use std::hash::BuildHasher;
    let state = std::hash::RandomState::new();
    assert_eq!(state.hash_one(&a), state.hash_one(&b));
    assert_ne!(
        a,
        BackendTlsSettings {
            client_certificate: Some(new_pki().client),
            ..b.clone()
        }
    );
    assert_ne!(
        a,
        BackendTlsSettings {
            pinned_keys: vec![],
            ..b.clone()
        }
    );
    assert!(BackendTlsSettings::default().accepts_any_certificate());
    assert!(!a.accepts_any_certificate());
    // Debug never shows a key, and shows pins readably.
    let debug = format!("{a:?}");
    assert!(debug.contains("AQID"), "{debug}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
}

#[test]
fn malformed_pins_are_refused_when_the_config_is_built() {
    let err = backend_client_config(&settings_pinning(vec![vec![1, 2, 3]]), HTTP1).unwrap_err();
    assert!(
        matches!(&err, TlsError::Config(m) if m.contains("1st public key is not a DER SubjectPublicKeyInfo")),
        "{err}"
    );
    assert!(InstanceCertVerifier::pinned(vec![]).is_err());
    let verifier = InstanceCertVerifier::dangerous_accept_any_certificate();
    assert!(format!("{verifier:?}").contains("DangerousAcceptAnyCertificate"));
}

fn config_message(result: Result<Vec<u8>, TlsError>) -> String {
    match result {
        Err(TlsError::Config(message)) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn garbage_empty_and_private_keys_are_refused() {
    let empty = config_message(parse_public_key(""));
    assert!(empty.contains("is empty"), "{empty}");
    let blank = config_message(parse_public_key(" \n\t "));
    assert!(blank.contains("is empty"), "{blank}");

    let garbage = config_message(parse_public_key("this is not a key!"));
    assert!(
        garbage.contains("neither PEM nor valid base64"),
        "{garbage}"
    );
    let random_base64 = config_message(parse_public_key("aGVsbG8gd29ybGQ="));
    assert!(
        random_base64.contains("neither a DER SubjectPublicKeyInfo nor a DER certificate"),
        "{random_base64}"
    );

    let ec_key = key(&PKCS_ECDSA_P256_SHA256);
    let rsa_key = key(&PKCS_RSA_SHA256);
    for private_pem in [
        ec_key.serialize_pem(),
        rsa_key.serialize_pem(),
        pem("EC PRIVATE KEY", &pkcs8_inner_key(&ec_key.serialize_der())),
        pem(
            "RSA PRIVATE KEY",
            &pkcs8_inner_key(&rsa_key.serialize_der()),
        ),
        pem("ENCRYPTED PRIVATE KEY", b"whatever"),
        // A key pasted along with its certificate.
        format!(
            "{}{}",
            self_signed_instance().cert_pem,
            ec_key.serialize_pem()
        ),
    ] {
        let message = config_message(parse_public_key(&private_pem));
        assert!(message.contains("holds a private key"), "{message}");
        assert!(message.contains("-pubout"), "{message}");
    }
    for private_der in [
        ec_key.serialize_der(),
        rsa_key.serialize_der(),
        pkcs8_inner_key(&ec_key.serialize_der()),
        pkcs8_inner_key(&rsa_key.serialize_der()),
    ] {
        let message = config_message(parse_public_key(&b64(&private_der)));
        assert!(message.contains("is a private key"), "{message}");
    }

    let truncated = config_message(parse_public_key("-----BEGIN PUBLIC KEY-----\nMFkw\n"));
    assert!(truncated.contains("truncated"), "{truncated}");
    let not_base64 = config_message(parse_public_key(
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
    ));
    assert!(not_base64.contains("not valid base64"), "{not_base64}");
    let not_a_key = config_message(parse_public_key(&pem("PUBLIC KEY", b"not DER at all")));
    assert!(not_a_key.contains("not a valid public key"), "{not_a_key}");
    let csr = config_message(parse_public_key(&pem("CERTIFICATE REQUEST", b"x")));
    assert!(csr.contains("CERTIFICATE REQUEST"), "{csr}");
    let two_keys = format!(
        "{}{}",
        pem("PUBLIC KEY", &another_key()),
        pem("PUBLIC KEY", &another_key())
    );
    let two = config_message(parse_public_key(&two_keys));
    assert!(two.contains("must be the only one"), "{two}");
    let huge = "A".repeat(100_000);
    assert!(config_message(parse_public_key(&huge)).contains("at most"));

    assert!(matches!(
        certificate_public_key(&ec_key.serialize_pem()),
        Err(TlsError::MalformedCertificate(_))
    ));
    assert!(matches!(
        certificate_public_key("nothing"),
        Err(TlsError::MalformedCertificate(_))
    ));
}

/// Rewrites a certificate as X.509 version 1 (no version field, no extensions), signed again by
/// `signer`. Old self-signed instance certificates are often v1: `openssl x509 -req` without an
/// extensions file makes them, and ELB's documentation example for `PublicKey` is one.
fn as_v1(cert_der: &[u8], key: &rcgen::KeyPair) -> Vec<u8> {
    fn tlv(input: &[u8]) -> (u8, &[u8], &[u8], &[u8]) {
        let (len, header) = if input[1] < 0x80 {
            (input[1] as usize, 2)
        } else {
            let n = (input[1] & 0x7f) as usize;
            let len = input[2..2 + n]
                .iter()
                .fold(0usize, |l, &b| (l << 8) | b as usize);
            (len, 2 + n)
        };
        (
            input[0],
            &input[header..header + len],
            &input[..header + len],
            &input[header + len..],
        )
    }
    fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(contents);
        out
    }
    let (_, cert, _, _) = tlv(cert_der);
    let (_, tbs, _, rest) = tlv(cert);
    let (_, _, signature_algorithm, _) = tlv(rest);
    // TBSCertificate minus [0] version and [3] extensions.
    let mut fields = Vec::new();
    let mut input = tbs;
    while !input.is_empty() {
        let (tag, _, whole, after) = tlv(input);
        if tag != 0xa0 && tag != 0xa3 {
            fields.extend_from_slice(whole);
        }
        input = after;
    }
    let tbs_v1 = encode(0x30, &fields);
    let signing_key = crypto_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .unwrap();
    let signer = signing_key
        .choose_scheme(&[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
        .unwrap();
    let signature = signer.sign(&tbs_v1).unwrap();
    let mut bits = vec![0u8];
    bits.extend(signature);
    let mut body = tbs_v1;
    body.extend_from_slice(signature_algorithm);
    body.extend(encode(0x03, &bits));
    encode(0x30, &body)
}

#[test]
fn version_1_certificates_are_accepted_and_pinned() {
    let key = key(&PKCS_ECDSA_P256_SHA256);
    let params = rcgen::CertificateParams::new(vec!["v1.internal".to_string()]).unwrap();
    let v3 = params.self_signed(&key).unwrap();
    let v1 = as_v1(v3.der(), &key);
    let cert_pem = pem("CERTIFICATE", &v1);
    let (_, parsed) = x509_parser::parse_x509_certificate(&v1).unwrap();
    assert_eq!(parsed.version(), x509_parser::x509::X509Version::V1);
    let instance = instance_from_pem(cert_pem.clone(), &key.serialize_pem());

    let pin = parse_public_key(&b64(&v1)).unwrap();
    assert_eq!(pin, key.public_key_der());
    for settings in [BackendTlsSettings::default(), settings_pinning(vec![pin])] {
        let client = backend_client_config(&settings, HTTP1).unwrap();
        for versions in VERSIONS {
            let server = instance_server(instance.key.clone(), versions, None);
            connect(&client, &server).unwrap_or_else(|e| panic!("{versions:?}: {e}"));
        }
    }
}
