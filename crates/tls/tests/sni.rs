mod common;

use std::sync::Arc;

use common::*;
use fulcrum_tls::{import_certificate, self_signed, SniTable};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

fn key(name: &str) -> Arc<CertifiedKey> {
    let (cert, key) = self_signed(&[name.to_string()]).unwrap();
    import_certificate(&cert, &key, None).unwrap().certified_key
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn exact_then_wildcard_then_default() {
    let default = key("default.example.com");
    let exact = key("www.example.com");
    let wild = key("*.example.com");
    let deep = key("*.b.example.com");
    let table = SniTable::new(
        default.clone(),
        &names(&["default.example.com"]),
        [
            (
                exact.clone(),
                names(&["www.example.com", "WWW2.Example.com."]),
            ),
            (wild.clone(), names(&["*.example.com"])),
            (deep.clone(), names(&["*.B.example.com"])),
        ],
    );
    let is = |name: Option<&str>, expected: &Arc<CertifiedKey>| {
        assert!(
            Arc::ptr_eq(&table.resolve(name), expected),
            "wrong certificate for {name:?}"
        );
    };
    is(Some("www.example.com"), &exact);
    is(Some("WWW.EXAMPLE.COM"), &exact);
    is(Some("www.example.com."), &exact);
    is(Some("www2.example.com"), &exact);
    is(Some("default.example.com"), &default);
    // One label under the wildcard, case and trailing dot ignored.
    is(Some("api.example.com"), &wild);
    is(Some("API.Example.Com."), &wild);
    is(Some("x.b.example.com"), &deep);
    // A wildcard covers exactly one label: not two, not none.
    is(Some("a.c.example.com"), &default);
    is(Some("example.com"), &default);
    is(Some(".example.com"), &default);
    is(Some("b.example.com"), &wild);
    is(Some("other.org"), &default);
    is(Some(""), &default);
    is(Some("."), &default);
    is(None, &default);
    assert_eq!(table.len(), 4);
}

#[test]
fn the_first_certificate_given_wins_a_shared_name() {
    let first = key("first");
    let second = key("second");
    let table = SniTable::new(
        first.clone(),
        &names(&["shared.example.com"]),
        [(
            second.clone(),
            names(&["shared.example.com", "only.example.com"]),
        )],
    );
    assert!(Arc::ptr_eq(
        &table.resolve(Some("shared.example.com")),
        &first
    ));
    assert!(Arc::ptr_eq(
        &table.resolve(Some("only.example.com")),
        &second
    ));
}

#[test]
fn the_client_s_signature_schemes_choose_between_rsa_and_ecdsa() {
    let root = ca("Test Root", &PKCS_ECDSA_P256_SHA256, None);
    let ecdsa = leaf(&["dual.example.com"], &PKCS_ECDSA_P256_SHA256, &root);
    let rsa = leaf(&["dual.example.com"], &PKCS_RSA_SHA256, &root);
    let ecdsa = import_certificate(&ecdsa.cert_pem(), &ecdsa.key_pem(), None).unwrap();
    let rsa = import_certificate(&rsa.cert_pem(), &rsa.key_pem(), None).unwrap();
    let table = SniTable::from_imported([&ecdsa, &rsa]).unwrap();
    let rsa_only = [
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PKCS1_SHA256,
    ];
    let any = [
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::RSA_PSS_SHA256,
    ];
    let got = table.resolve_for(Some("dual.example.com"), &rsa_only);
    assert!(Arc::ptr_eq(&got, &rsa.certified_key));
    let got = table.resolve_for(Some("dual.example.com"), &any);
    assert!(Arc::ptr_eq(&got, &ecdsa.certified_key));
    assert!(SniTable::from_imported([]).is_none());
}

#[test]
fn thousands_of_certificates() {
    let shared = key("shared");
    let default = key("default");
    let others: Vec<_> = (0..5000)
        .map(|i| {
            // One key for all keeps the test fast; what matters is the name lookups.
            let names = vec![
                format!("host{i}.example.com"),
                format!("*.tenant{i}.example.net"),
            ];
            (shared.clone(), names)
        })
        .collect();
    let mut table = SniTable::new(default.clone(), &[], others);
    assert_eq!(table.len(), 5001);
    for i in (0..5000).step_by(97) {
        assert!(Arc::ptr_eq(
            &table.resolve(Some(&format!("host{i}.example.com"))),
            &shared
        ));
        assert!(Arc::ptr_eq(
            &table.resolve(Some(&format!("www.tenant{i}.example.net"))),
            &shared
        ));
    }
    assert!(Arc::ptr_eq(
        &table.resolve(Some("host5000.example.com")),
        &default
    ));
    table = SniTable::new(key("x"), &[], []);
    assert_eq!(table.len(), 1);
}
