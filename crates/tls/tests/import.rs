mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use fulcrum_tls::{import_certificate, self_signed, TlsError};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn ecdsa_leaf_without_chain() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(
        &["www.example.com", "Example.COM."],
        &PKCS_ECDSA_P256_SHA256,
        &root,
    );
    let got = import_certificate(&leaf.cert_pem(), &leaf.key_pem(), None).unwrap();
    assert_eq!(got.dns_names, ["www.example.com", "example.com"]);
    assert_eq!(got.key_algorithm, "ECDSA-P256");
    assert_eq!(got.subject, "CN=www.example.com");
    assert!(got.not_before <= now() && now() < got.not_after);
    assert_eq!(got.certified_key.cert.len(), 1);
    assert_eq!(got.certified_key.cert[0].as_ref(), leaf.der());
}

#[test]
fn rsa_leaf_with_intermediate_and_root() {
    let root = ca("Test Root", &PKCS_ECDSA_P384_SHA384, None);
    let intermediate = ca("Test Intermediate", &PKCS_RSA_SHA256, Some(&root));
    let leaf = leaf(&["api.example.com"], &PKCS_RSA_SHA256, &intermediate);
    let chain = format!("{}{}", intermediate.pem(), root.pem());
    let got = import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some(&chain)).unwrap();
    assert_eq!(got.key_algorithm, "RSA-2048");
    assert_eq!(got.dns_names, ["api.example.com"]);
    let certs = &got.certified_key.cert;
    assert_eq!(certs.len(), 3);
    assert_eq!(certs[1].as_ref(), intermediate.cert.der().as_ref());
    assert_eq!(certs[2].as_ref(), root.cert.der().as_ref());

    // The root may be left out, as most servers do.
    let got =
        import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some(&intermediate.pem())).unwrap();
    assert_eq!(got.certified_key.cert.len(), 2);
}

#[test]
fn rsa_key_in_pkcs1_form() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(&["rsa.example.com"], &PKCS_RSA_SHA256, &root);
    let pkcs1 = pem(
        "RSA PRIVATE KEY",
        &pkcs8_inner_key(&leaf.key.serialize_der()),
    );
    let got = import_certificate(&leaf.cert_pem(), &pkcs1, None).unwrap();
    assert_eq!(got.key_algorithm, "RSA-2048");
}

#[test]
fn other_key_kinds() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let p384 = leaf(&["p384.example.com"], &PKCS_ECDSA_P384_SHA384, &root);
    let got = import_certificate(&p384.cert_pem(), &p384.key_pem(), None).unwrap();
    assert_eq!(got.key_algorithm, "ECDSA-P384");

    let ed = leaf(&["ed.example.com"], &PKCS_ED25519, &root);
    let got = import_certificate(&ed.cert_pem(), &ed.key_pem(), None).unwrap();
    assert_eq!(got.key_algorithm, "Ed25519");

    let p521 = leaf(&["p521.example.com"], &rcgen::PKCS_ECDSA_P521_SHA512, &root);
    let err = import_certificate(&p521.cert_pem(), &p521.key_pem(), None).unwrap_err();
    assert!(matches!(err, TlsError::UnsupportedKey(_)), "{err}");
    assert!(err.to_string().contains("P-521"), "{err}");
    assert_eq!(err.code(), "MalformedCertificate");
}

#[test]
fn ec_parameters_block_before_the_key_is_accepted() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(&["ec.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let key = format!(
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
        leaf.key_pem()
    );
    import_certificate(&leaf.cert_pem(), &key, None).unwrap();
}

#[test]
fn indented_crlf_pem_is_accepted() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(&["crlf.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let body: String = leaf
        .cert_pem()
        .lines()
        .map(|l| format!("  {l}\r\n"))
        .collect();
    import_certificate(&body, &leaf.key_pem(), Some("  \n")).unwrap();
}

#[test]
fn common_name_when_there_is_no_san() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf_cn_only("Legacy.Example.com", &root);
    let got = import_certificate(&leaf.cert_pem(), &leaf.key_pem(), None).unwrap();
    assert_eq!(got.dns_names, ["legacy.example.com"]);
}

#[test]
fn key_of_another_certificate_is_a_mismatch() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let a = leaf(&["a.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let b = leaf(&["b.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let err = import_certificate(&a.cert_pem(), &b.key_pem(), None).unwrap_err();
    assert_eq!(err, TlsError::KeyPairMismatch);
    assert_eq!(err.code(), "KeyPairMismatch");
    assert_eq!(
        err.to_string(),
        "the private key does not match the certificate's public key"
    );

    // A key of another kind altogether is refused too, never served.
    let rsa = leaf(&["rsa.example.com"], &PKCS_RSA_SHA256, &root);
    let err = import_certificate(&a.cert_pem(), &rsa.key_pem(), None).unwrap_err();
    assert_eq!(err, TlsError::KeyPairMismatch);
}

#[test]
fn chain_out_of_order_is_refused() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let intermediate = ca("Test Intermediate", &PKCS_ECDSA_P256_SHA256, Some(&root));
    let leaf = leaf(&["www.example.com"], &PKCS_ECDSA_P256_SHA256, &intermediate);

    let reversed = format!("{}{}", root.pem(), intermediate.pem());
    let err = import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some(&reversed)).unwrap_err();
    assert!(matches!(err, TlsError::MalformedChain(_)), "{err:?}");
    assert_eq!(err.code(), "MalformedCertificate");
    assert!(
        err.to_string()
            .starts_with("the chain's 1st certificate did not issue the certificate body"),
        "{err}"
    );
    assert!(err.to_string().contains("CN=Test Intermediate"), "{err}");

    let other_root = ca("Other Root", &PKCS_ECDSA_P256_SHA256, None);
    let wrong_second = format!("{}{}", intermediate.pem(), other_root.pem());
    let err =
        import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some(&wrong_second)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the chain's 2nd certificate did not issue the 1st"),
        "{err}"
    );
}

#[test]
fn chain_with_the_right_name_but_another_key_is_refused() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(&["www.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    // Same subject name, different key: only the signature check tells them apart.
    let impostor = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let err =
        import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some(&impostor.pem())).unwrap_err();
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );

    // An RSA impostor: the signature algorithm does not even fit the key.
    let rsa_impostor = ca("Test Root", &PKCS_RSA_SHA256, None);
    let err = import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some(&rsa_impostor.pem()))
        .unwrap_err();
    assert!(matches!(err, TlsError::MalformedChain(_)), "{err}");
}

#[test]
fn unrelated_chain_is_refused() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(&["www.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let unrelated = ca("Someone Else", &PKCS_ECDSA_P256_SHA256, None);
    let err =
        import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some(&unrelated.pem())).unwrap_err();
    assert!(matches!(err, TlsError::MalformedChain(_)));
    assert!(
        err.to_string().contains("its issuer is \"CN=Test Root\""),
        "{err}"
    );

    let err = import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some("not pem")).unwrap_err();
    assert!(
        err.to_string().contains("chain holds no PEM block"),
        "{err}"
    );

    let with_key = format!("{}{}", root.pem(), leaf.key_pem());
    let err = import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some(&with_key)).unwrap_err();
    assert!(
        err.to_string()
            .contains("chain's 2nd PEM block is a PRIVATE KEY"),
        "{err}"
    );
}

#[test]
fn two_certificates_in_the_body_are_refused() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(&["www.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let body = format!("{}{}", leaf.cert_pem(), root.pem());
    let err = import_certificate(&body, &leaf.key_pem(), None).unwrap_err();
    assert!(matches!(err, TlsError::MalformedCertificate(_)));
    assert!(err.to_string().contains("holds 2 PEM blocks"), "{err}");
}

#[test]
fn malformed_input_is_refused_with_a_reason() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(&["www.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let (body, key) = (leaf.cert_pem(), leaf.key_pem());

    let cases: Vec<(String, String, &str)> = vec![
        (
            String::new(),
            key.clone(),
            "certificate body holds no PEM block",
        ),
        (
            body.clone(),
            String::new(),
            "private key holds no PEM block",
        ),
        (
            "\u{0}\u{1}garbage\u{fffd}".into(),
            key.clone(),
            "certificate body holds no PEM block",
        ),
        (
            key.clone(),
            key.clone(),
            "holds a PEM PRIVATE KEY block, not a CERTIFICATE",
        ),
        (
            body.clone(),
            body.clone(),
            "holds a PEM CERTIFICATE block, not a private key",
        ),
        (body[..body.len() / 2].to_string(), key.clone(), "truncated"),
        (body.clone(), key[..key.len() / 2].to_string(), "truncated"),
        (
            "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n".into(),
            key.clone(),
            "not valid base64",
        ),
        (
            pem("CERTIFICATE", b"hello world"),
            key.clone(),
            "not a valid X.509 certificate",
        ),
        (
            body.clone(),
            pem("PRIVATE KEY", b"hello world"),
            "cannot be loaded as the ECDSA-P256 key",
        ),
        (
            body.clone(),
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
                .into(),
            "encrypted",
        ),
        (
            format!("{body}{}", "x".repeat(20_000)),
            key.clone(),
            "at most 16384",
        ),
    ];
    for (body, key, expected) in cases {
        let err = import_certificate(&body, &key, None).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected {expected:?}, got {err:?}"
        );
        assert_eq!(err.code(), "MalformedCertificate");
    }

    // Trailing bytes after the DER certificate.
    let mut der = leaf.der().to_vec();
    der.extend_from_slice(b"\x00\x00");
    let err = import_certificate(&pem("CERTIFICATE", &der), &key, None).unwrap_err();
    assert!(err.to_string().contains("unexpected bytes follow"), "{err}");
}

#[test]
fn mutated_certificates_never_panic() {
    let root = ca("Test Root", &PKCS_RSA_SHA256, None);
    let leaf = leaf(&["www.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let key = leaf.key_pem();
    let der = leaf.der().to_vec();
    let chain_der = root.cert.der().to_vec();
    let mut rng = Lcg(7);
    for round in 0..3000 {
        let mut body = der.clone();
        let mut chain = chain_der.clone();
        let target = if round % 2 == 0 {
            &mut body
        } else {
            &mut chain
        };
        match rng.below(3) {
            0 => {
                let at = rng.below(target.len());
                target[at] ^= 1 << rng.below(8);
            }
            1 => target.truncate(rng.below(target.len())),
            _ => {
                let at = rng.below(target.len());
                target[at] = rng.next() as u8;
                target.insert(at, rng.next() as u8);
            }
        }
        let _ = import_certificate(
            &pem("CERTIFICATE", &body),
            &key,
            Some(&pem("CERTIFICATE", &chain)),
        );
    }
    for round in 0..500 {
        let mut text = leaf.cert_pem().into_bytes();
        let at = rng.below(text.len());
        text[at] = b"-\nA=+/ \r"[round % 8];
        let _ = import_certificate(&String::from_utf8(text).unwrap(), &key, None);
    }
}

#[test]
fn debug_prints_no_key_material() {
    let (cert, key) = self_signed(&["demo.example.com".to_string()]).unwrap();
    let got = import_certificate(&cert, &key, None).unwrap();
    let debug = format!("{got:?}");
    assert!(debug.contains("demo.example.com"), "{debug}");
    assert!(!debug.to_lowercase().contains("signer"), "{debug}");
    assert!(!debug.contains("certified_key"), "{debug}");
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!debug.contains(&key_body[..16]), "{debug}");
}

#[test]
fn self_signed_certificates_import() {
    let names = vec!["localhost".to_string(), "demo.fulcrum.test".to_string()];
    let (cert, key) = self_signed(&names).unwrap();
    let got = import_certificate(&cert, &key, None).unwrap();
    assert_eq!(got.dns_names, names);
    assert_eq!(got.key_algorithm, "ECDSA-P256");
    assert!(self_signed(&[]).is_err());
}

#[test]
fn stored_certificates_import() {
    let (body_pem, key_pem) = self_signed(&["stored.example.com".to_string()]).unwrap();
    let stored = fulcrum_model::ServerCertificate {
        id: "ASCAEXAMPLE".into(),
        name: "stored".into(),
        path: "/".into(),
        upload_date: 0,
        expiration: 0,
        body_pem,
        chain_pem: None,
        private_key: fulcrum_model::PrivateKeyPem::new(key_pem),
        tags: vec![],
    };
    let got = fulcrum_tls::import_stored(&stored).unwrap();
    assert_eq!(got.dns_names, ["stored.example.com"]);
}

#[test]
fn ec_key_in_sec1_form() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(&["sec1.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let sec1 = pem(
        "EC PRIVATE KEY",
        &pkcs8_inner_key(&leaf.key.serialize_der()),
    );
    let got = import_certificate(&leaf.cert_pem(), &sec1, None).unwrap();
    assert_eq!(got.key_algorithm, "ECDSA-P256");
}

#[test]
fn messages_name_the_algorithms_and_the_decoding_problem() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let leaf = leaf(&["www.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let rsa_impostor = ca("Test Root", &PKCS_RSA_SHA256, None);
    let err = import_certificate(&leaf.cert_pem(), &leaf.key_pem(), Some(&rsa_impostor.pem()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the chain's 1st certificate did not issue the certificate body: it is signed with \
         ecdsa-with-SHA256 but the issuer's key is rsaEncryption; the algorithm is unsupported \
         or does not fit that key"
    );
    let err = import_certificate(&pem("CERTIFICATE", b"hello"), &leaf.key_pem(), None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the certificate body is not a valid X.509 certificate: the DER encoding"),
        "{err}"
    );
}
