//! Turning an uploaded certificate into a model object: checked by the TLS engine, given an
//! IAM-style id, its expiration read from the certificate itself.

use fulcrum_model::{
    check_certificate_name, check_iam_path, ModelError, PrivateKeyPem, ServerCertificate, Tag,
};
use rand::Rng;

/// What an operator uploads (IAM `UploadServerCertificate`).
pub struct CertificateUpload {
    pub name: String,
    pub path: Option<String>,
    pub body_pem: String,
    pub private_key_pem: PrivateKeyPem,
    pub chain_pem: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tls(#[from] fulcrum_tls::TlsError),
}

impl UploadError {
    /// The IAM error code.
    pub fn code(&self) -> &'static str {
        match self {
            UploadError::Model(e) => e.code(),
            UploadError::Tls(e) => e.code(),
        }
    }
}

/// Checks an upload (PEM, key pair, chain) and builds the certificate to add to the state.
pub fn prepare_certificate(
    upload: CertificateUpload,
    now: u64,
) -> Result<ServerCertificate, UploadError> {
    check_certificate_name(&upload.name)?;
    let path = upload.path.unwrap_or_else(|| "/".to_owned());
    check_iam_path(&path)?;
    let chain = upload.chain_pem.filter(|c| !c.trim().is_empty());
    let imported = fulcrum_tls::import_certificate(
        &upload.body_pem,
        upload.private_key_pem.expose(),
        chain.as_deref(),
    )?;
    Ok(ServerCertificate {
        id: certificate_id(),
        name: upload.name,
        path,
        upload_date: now,
        expiration: imported.not_after,
        body_pem: upload.body_pem,
        chain_pem: chain,
        private_key: upload.private_key_pem,
        tags: upload.tags,
    })
}

/// An id in IAM's shape: `ASCA` and 17 upper-case letters and digits.
fn certificate_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..17)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("ASCA{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(body: &str, key: &str) -> CertificateUpload {
        CertificateUpload {
            name: "www".into(),
            path: None,
            body_pem: body.into(),
            private_key_pem: PrivateKeyPem::new(key.into()),
            chain_pem: Some("  \n".into()),
            tags: vec![],
        }
    }

    #[test]
    fn a_good_upload_becomes_a_certificate() {
        let (cert, key) = fulcrum_tls::self_signed(&["www.example.test".into()]).unwrap();
        let c = prepare_certificate(upload(&cert, &key), 1_700_000_000).unwrap();
        assert!(c.id.starts_with("ASCA") && c.id.len() == 21, "{}", c.id);
        assert_eq!(c.path, "/");
        assert_eq!(c.chain_pem, None, "a blank chain is no chain");
        assert!(c.expiration > 1_700_000_000);
    }

    #[test]
    fn bad_uploads_get_iam_codes() {
        let (cert, key) = fulcrum_tls::self_signed(&["a.test".into()]).unwrap();
        let (_, other_key) = fulcrum_tls::self_signed(&["b.test".into()]).unwrap();
        let err = prepare_certificate(upload(&cert, &other_key), 0).unwrap_err();
        assert_eq!(err.code(), "KeyPairMismatch");
        let err = prepare_certificate(upload("garbage", &key), 0).unwrap_err();
        assert_eq!(err.code(), "MalformedCertificate");
        let mut bad_name = upload(&cert, &key);
        bad_name.name = "a/b".into();
        assert_eq!(
            prepare_certificate(bad_name, 0).unwrap_err().code(),
            "ValidationError"
        );
    }
}
