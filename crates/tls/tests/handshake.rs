//! Real rustls handshakes in memory: the server config this crate builds against a client that
//! trusts the test CA.
mod common;

use std::sync::Arc;

use common::*;
use fulcrum_tls::{
    cipher_suite_by_name, crypto_provider, import_certificate, server_config, ImportedCertificate,
    ServerTlsSettings, SessionResumption, SniTable, SwappableResolver,
};
use rustls::client::ClientConfig;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, HandshakeKind, ProtocolVersion, RootCertStore, ServerConnection};

struct Fixture {
    root: Ca,
    a: ImportedCertificate,
    b: ImportedCertificate,
}

fn import(leaf: &Leaf) -> ImportedCertificate {
    import_certificate(&leaf.cert_pem(), &leaf.key_pem(), None).unwrap()
}

fn fixture() -> Fixture {
    let root = ca("Handshake Root", &PKCS_ECDSA_P256_SHA256, None);
    let a = import(&leaf(&["a.example.com"], &PKCS_ECDSA_P256_SHA256, &root));
    let b = import(&leaf(&["*.b.example.com"], &PKCS_RSA_SHA256, &root));
    Fixture { root, a, b }
}

fn client_config(
    root: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root.cert.der().clone()).unwrap();
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn all_versions() -> Vec<&'static rustls::SupportedProtocolVersion> {
    vec![&rustls::version::TLS13, &rustls::version::TLS12]
}

fn connect(
    client_config: &Arc<ClientConfig>,
    server_config: &Arc<rustls::ServerConfig>,
    name: &str,
) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
    let mut client = ClientConnection::new(
        client_config.clone(),
        ServerName::try_from(name.to_string()).unwrap(),
    )
    .unwrap();
    let mut server = ServerConnection::new(server_config.clone()).unwrap();
    pump(&mut client, &mut server)?;
    assert!(!client.is_handshaking() && !server.is_handshaking());
    Ok((client, server))
}

fn leaf_of(client: &ClientConnection) -> Vec<u8> {
    client.peer_certificates().unwrap()[0].as_ref().to_vec()
}

fn der_of(cert: &ImportedCertificate) -> Vec<u8> {
    cert.certified_key.cert[0].as_ref().to_vec()
}

#[test]
fn sni_chooses_the_certificate_and_alpn_negotiates_h2() {
    let f = fixture();
    let table = SniTable::from_imported([&f.a, &f.b]).unwrap();
    let resolver = Arc::new(SwappableResolver::new(table));
    let resumption = SessionResumption::new().unwrap();
    let server = server_config(resolver, &ServerTlsSettings::default(), &resumption, true).unwrap();
    let client = client_config(&f.root, &all_versions());

    let (c, s) = connect(&client, &server, "a.example.com").unwrap();
    assert_eq!(leaf_of(&c), der_of(&f.a));
    assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(s.server_name(), Some("a.example.com"));
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_3));

    let (c, _) = connect(&client, &server, "x.b.example.com").unwrap();
    assert_eq!(leaf_of(&c), der_of(&f.b));

    // Not covered by the wildcard: the default is served, and the client rightly refuses it.
    let err = connect(&client, &server, "x.y.b.example.com").unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "{err:?}"
    );
}

#[test]
fn http1_only_when_h2_is_off_and_tls12_works() {
    let f = fixture();
    let resolver = Arc::new(SwappableResolver::new(
        SniTable::from_imported([&f.a]).unwrap(),
    ));
    let resumption = SessionResumption::new().unwrap();
    let server =
        server_config(resolver, &ServerTlsSettings::default(), &resumption, false).unwrap();
    let client = client_config(&f.root, &[&rustls::version::TLS12]);
    let (c, _) = connect(&client, &server, "a.example.com").unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_2));
}

#[test]
fn swap_serves_the_new_certificate_to_new_handshakes() {
    let f = fixture();
    let resolver = Arc::new(SwappableResolver::new(
        SniTable::from_imported([&f.a]).unwrap(),
    ));
    let resumption = SessionResumption::new().unwrap();
    let server = server_config(
        resolver.clone(),
        &ServerTlsSettings::default(),
        &resumption,
        true,
    )
    .unwrap();
    let client = client_config(&f.root, &all_versions());
    let (mut old_client, mut old_server) = connect(&client, &server, "a.example.com").unwrap();
    assert_eq!(leaf_of(&old_client), der_of(&f.a));

    let renewed = import(&leaf(&["a.example.com"], &PKCS_ECDSA_P384_SHA384, &f.root));
    resolver.swap(SniTable::from_imported([&renewed]).unwrap());
    // A fresh client, so that the handshake is a full one that sends a certificate.
    let fresh = client_config(&f.root, &all_versions());
    let (c, _) = connect(&fresh, &server, "a.example.com").unwrap();
    assert_eq!(leaf_of(&c), der_of(&renewed));

    // The connection made before the swap carries on.
    use std::io::{Read, Write};
    old_client.writer().write_all(b"still here").unwrap();
    pump(&mut old_client, &mut old_server).unwrap();
    let mut got = [0u8; 10];
    old_server.reader().read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still here");
}

#[test]
fn resumption_survives_a_new_server_config() {
    let f = fixture();
    let resolver = Arc::new(SwappableResolver::new(
        SniTable::from_imported([&f.a]).unwrap(),
    ));
    let resumption = SessionResumption::new().unwrap();
    for versions in [vec![&rustls::version::TLS13], vec![&rustls::version::TLS12]] {
        let client = client_config(&f.root, &versions);
        let first = server_config(
            resolver.clone(),
            &ServerTlsSettings::default(),
            &resumption,
            true,
        )
        .unwrap();
        let (c, _) = connect(&client, &first, "a.example.com").unwrap();
        assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full));
        // A settings change or a rotation builds a new config with the same resumption state.
        let second = server_config(
            resolver.clone(),
            &ServerTlsSettings::default(),
            &resumption,
            false,
        )
        .unwrap();
        let (c, _) = connect(&client, &second, "a.example.com").unwrap();
        assert_eq!(
            c.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{versions:?}"
        );
    }
}

#[test]
fn settings_limit_versions_and_suites() {
    let f = fixture();
    let resolver = Arc::new(SwappableResolver::new(
        SniTable::from_imported([&f.a]).unwrap(),
    ));
    let resumption = SessionResumption::new().unwrap();
    let tls12_client = client_config(&f.root, &[&rustls::version::TLS12]);

    let tls13_only = ServerTlsSettings {
        tls13_only: true,
        ..Default::default()
    };
    let server = server_config(resolver.clone(), &tls13_only, &resumption, true).unwrap();
    assert!(connect(&tls12_client, &server, "a.example.com").is_err());
    let tls13_client = client_config(&f.root, &all_versions());
    connect(&tls13_client, &server, "a.example.com").unwrap();

    // A policy naming only TLS 1.2 suites offers TLS 1.2 only.
    let suite = cipher_suite_by_name("ECDHE-ECDSA-AES256-GCM-SHA384").unwrap();
    let tls12_policy = ServerTlsSettings {
        cipher_suites: vec![
            suite,
            cipher_suite_by_name("ECDHE-RSA-AES256-GCM-SHA384").unwrap(),
        ],
        server_cipher_order: true,
        ..Default::default()
    };
    let server = server_config(resolver.clone(), &tls12_policy, &resumption, true).unwrap();
    let (c, _) = connect(&tls13_client, &server, "a.example.com").unwrap();
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(c.negotiated_cipher_suite().unwrap().suite(), suite);

    // Nothing left to negotiate is a configuration error, not a listener that fails every client.
    let impossible = ServerTlsSettings {
        tls13_only: true,
        cipher_suites: vec![suite],
        ..Default::default()
    };
    let err = server_config(resolver.clone(), &impossible, &resumption, true).unwrap_err();
    assert_eq!(err.code(), "InvalidConfigurationRequest");
    let unknown = ServerTlsSettings {
        cipher_suites: vec![rustls::CipherSuite::TLS_RSA_WITH_AES_128_CBC_SHA],
        ..Default::default()
    };
    assert!(server_config(resolver, &unknown, &resumption, true).is_err());
}
