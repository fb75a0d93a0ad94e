//! A throwaway certificate authority for tests (rcgen).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SignatureAlgorithm,
};

/// A test certificate authority (rcgen, ECDSA P-256).
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    /// Creates a new self-signed CA whose subject common name is `name`.
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name = dn(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa { cert, key }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A leaf for these DNS names (may include wildcards like "*.example.test"), signed by this CA: (cert_pem, key_pem).
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generate leaf key");
        self.sign_leaf(names, key, false)
    }

    /// Same with an RSA-2048 key (PKCS#8 PEM): (cert_pem, key_pem).
    pub fn issue_rsa(&self, names: &[&str]) -> (String, String) {
        let key = rsa_key(&rcgen::PKCS_RSA_SHA256);
        self.sign_leaf(names, key, false)
    }

    /// A leaf (ECDSA P-256) that expired long ago (valid 2000-01-01 .. 2001-01-01): (cert_pem, key_pem).
    pub fn issue_expired(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generate leaf key");
        self.sign_leaf(names, key, true)
    }

    fn sign_leaf(&self, names: &[&str], key: KeyPair, expired: bool) -> (String, String) {
        let params = leaf_params(names, expired);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        (cert.pem(), key.serialize_pem())
    }
}

/// A self-signed leaf (ECDSA P-256) for these DNS names, e.g. for a backend's own certificate: (cert_pem, key_pem).
pub fn self_signed(names: &[&str]) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("generate key");
    let cert = leaf_params(names, false)
        .self_signed(&key)
        .expect("self-sign");
    (cert.pem(), key.serialize_pem())
}

fn leaf_params(names: &[&str], expired: bool) -> CertificateParams {
    let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("leaf params");
    params.distinguished_name = dn(names.first().copied().unwrap_or("fulcrum test leaf"));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    params
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn rsa_key(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).expect("generate RSA-2048 key")
}
