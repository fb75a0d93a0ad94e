//! Self-tests of the test CA, TLS configurations and the HTTPS clients against a TLS backend.

use std::net::SocketAddr;
use std::sync::Arc;

use fulcrum_testkit::{
    certs_from_pem, client_tls_config, client_tls_config_with_cert, https_get, server_tls_config,
    server_tls_config_mtls, Backend, Conn, TestCa,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOTH: &[&[u8]] = &[b"h2", b"http/1.1"];

async fn tls_backend(ca: &TestCa, rsa: bool) -> (Backend, String) {
    let (cert, key) = if rsa {
        ca.issue_rsa(&["*.example.test", "example.test"])
    } else {
        ca.issue(&["*.example.test", "example.test"])
    };
    let backend = Backend::start_tls("secure", server_tls_config(&cert, &key, BOTH)).await;
    (backend, cert)
}

#[tokio::test]
async fn https_h2_and_h1_by_alpn() {
    let ca = TestCa::new("fulcrum test CA");
    let (backend, cert) = tls_backend(&ca, false).await;
    let leaf = certs_from_pem(&cert).remove(0);

    let h2 = client_tls_config(&ca.cert_pem(), &[b"h2"]);
    let reply = https_get(
        backend.addr(),
        "www.example.test",
        h2,
        "/x",
        &[("x-a", "1")],
    )
    .await
    .unwrap();
    assert_eq!(reply.version, http::Version::HTTP_2);
    assert_eq!(reply.instance(), "secure");
    assert_eq!(reply.header("x-a"), Some("1"));
    let json = reply.json();
    assert_eq!(
        (json["tls"].as_bool(), json["alpn"].as_str()),
        (Some(true), Some("h2"))
    );
    assert_eq!(json["sni"], "www.example.test");
    assert_eq!(
        json["authority"],
        format!("www.example.test:{}", backend.addr().port())
    );
    assert_eq!(reply.peer_cert_der.as_deref(), Some(&leaf[..]));

    let h1 = client_tls_config(&ca.cert_pem(), &[b"http/1.1"]);
    let mut conn = Conn::https(backend.addr(), "example.test", h1)
        .await
        .unwrap();
    assert!(!conn.is_h2());
    for _ in 0..2 {
        let reply = conn.get("/", &[]).await.unwrap();
        assert_eq!(reply.version, http::Version::HTTP_11);
        assert_eq!(reply.json()["alpn"], "http/1.1");
    }
    assert_eq!(backend.connections(), 2);
}

#[tokio::test]
async fn rsa_leaf_serves_tls() {
    let ca = TestCa::new("rsa CA");
    let (backend, cert) = tls_backend(&ca, true).await;
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    let config = client_tls_config(&ca.cert_pem(), &[]);
    let reply = https_get(backend.addr(), "a.example.test", config, "/", &[])
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.version, http::Version::HTTP_11);
    let (_, key) = ca.issue_rsa(&["x.test"]);
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8: {key}"
    );
}

#[tokio::test]
async fn untrusted_or_mismatched_certificates_fail() {
    let ca = TestCa::new("right CA");
    let (backend, _) = tls_backend(&ca, false).await;
    let other = TestCa::new("other CA");
    let wrong_ca = client_tls_config(&other.cert_pem(), BOTH);
    assert!(
        https_get(backend.addr(), "a.example.test", wrong_ca, "/", &[])
            .await
            .is_err()
    );
    let right_ca = client_tls_config(&ca.cert_pem(), BOTH);
    // The wildcard covers one label only.
    assert!(
        https_get(backend.addr(), "a.b.example.test", right_ca, "/", &[])
            .await
            .is_err()
    );

    let (cert, key) = ca.issue_expired(&["old.test"]);
    let expired = Backend::start_tls("old", server_tls_config(&cert, &key, BOTH)).await;
    let config = client_tls_config(&ca.cert_pem(), BOTH);
    assert!(https_get(expired.addr(), "old.test", config, "/", &[])
        .await
        .is_err());
}

#[tokio::test]
async fn mutual_tls() {
    let ca = TestCa::new("mtls CA");
    let (cert, key) = ca.issue(&["backend.test"]);
    let server = server_tls_config_mtls(&cert, &key, &ca.cert_pem(), BOTH);
    let backend = Backend::start_tls("mtls", server).await;
    let (client_cert, client_key) = ca.issue(&["balancer.test"]);
    let with_cert = client_tls_config_with_cert(&ca.cert_pem(), BOTH, &client_cert, &client_key);
    let reply = https_get(backend.addr(), "backend.test", with_cert, "/", &[])
        .await
        .unwrap();
    assert_eq!(reply.json()["client_cert"], true);
    let without = client_tls_config(&ca.cert_pem(), BOTH);
    assert!(https_get(backend.addr(), "backend.test", without, "/", &[])
        .await
        .is_err());
}

/// A tiny rustls server written here (not the Backend): answers one HTTP/1.1 request with a fixed reply.
async fn tiny_tls_server(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tls.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = br#"{"instance":"tiny","headers":{}}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(body).await.unwrap();
        tls.shutdown().await.unwrap();
    });
    addr
}

#[tokio::test]
async fn https_get_against_a_tiny_rustls_server() {
    let ca = TestCa::new("tiny CA");
    let (cert, key) = ca.issue(&["tiny.test"]);
    let addr = tiny_tls_server(server_tls_config(&cert, &key, &[b"http/1.1"])).await;
    let config = client_tls_config(&ca.cert_pem(), BOTH);
    let reply = https_get(addr, "tiny.test", config, "/", &[])
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.instance(), "tiny");
    assert!(reply.peer_cert_der.is_some());
}
