//! Server certificates: an upload checked by the TLS engine, given an IAM-style id and its
//! expiration read from the certificate itself; rename, delete (refused while a listener uses
//! it), tags; how requests name a certificate; which listeners use one.

use fulcrum_model::{
    check_certificate_name, check_iam_path, LbName, ModelError, PrivateKeyPem, ServerCertificate,
    State, Tag,
};
use rand::Rng;

use crate::{Control, ControlError};

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

impl From<UploadError> for ControlError {
    fn from(e: UploadError) -> ControlError {
        let field = match &e {
            UploadError::Tls(fulcrum_tls::TlsError::MalformedKey(_))
            | UploadError::Tls(fulcrum_tls::TlsError::UnsupportedKey(_))
            | UploadError::Tls(fulcrum_tls::TlsError::KeyPairMismatch) => Some("PrivateKey"),
            UploadError::Tls(fulcrum_tls::TlsError::MalformedChain(_)) => Some("CertificateChain"),
            UploadError::Tls(fulcrum_tls::TlsError::MalformedCertificate(_)) => {
                Some("CertificateBody")
            }
            UploadError::Model(ModelError::Validation(m)) if m.contains("path") => Some("Path"),
            UploadError::Model(_) => Some("ServerCertificateName"),
            _ => None,
        };
        ControlError {
            code: e.code(),
            message: e.to_string(),
            field: field.map(str::to_owned),
        }
    }
}

/// A change to an uploaded certificate (IAM `UpdateServerCertificate`).
#[derive(Debug, Clone, Default)]
pub struct CertificateChange {
    pub new_name: Option<String>,
    pub new_path: Option<String>,
}

/// A listener that serves a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateUse {
    pub load_balancer: LbName,
    pub port: u16,
    /// The listener's default certificate (its `SSLCertificateId`), or one more for SNI.
    pub is_default: bool,
}

/// IAM reports a missing certificate as `NoSuchEntity`, in its own words (the model speaks
/// ELB's `CertificateNotFound`).
fn iam_error(e: ControlError, name: &str) -> ControlError {
    if e.code == "CertificateNotFound" {
        not_found(name)
    } else {
        e
    }
}

fn not_found(name: &str) -> ControlError {
    ControlError::new(
        "NoSuchEntity",
        format!("The Server Certificate with name {name} cannot be found."),
    )
    .at("ServerCertificateName")
}

impl Control {
    /// IAM `UploadServerCertificate`: checks the upload and adds it; returns the certificate
    /// as stored (never to be shown with its key).
    pub fn upload_certificate(
        &self,
        upload: CertificateUpload,
    ) -> Result<ServerCertificate, ControlError> {
        check_new_name(&self.snapshot().state, &upload.name)?;
        let cert = prepare_certificate(upload, crate::now())?;
        let name = cert.name.clone();
        let id = cert.id.clone();
        // As stored: the model keeps tags sorted by key.
        self.update(|s| {
            s.add_certificate(cert.clone())?;
            s.certificates
                .get(&id)
                .cloned()
                .ok_or_else(|| ModelError::CertificateNotFound(id.clone()))
        })
        .map_err(|e| iam_error(e, &name))
    }

    /// The certificate named `name`, IAM's way (`NoSuchEntity` when there is none).
    pub fn certificate(
        &self,
        state: &State,
        name: &str,
    ) -> Result<ServerCertificate, ControlError> {
        state
            .certificate_by_name(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    /// IAM `UpdateServerCertificate`: a new name or path.
    pub fn update_certificate(
        &self,
        name: &str,
        change: CertificateChange,
    ) -> Result<(), ControlError> {
        self.update(|s| {
            s.update_certificate(name, change.new_name.as_deref(), change.new_path.as_deref())
        })
        .map_err(|e| match e.code {
            "EntityAlreadyExists" | "ValidationError" if !e.message.contains("path") => {
                iam_error(e, name).at("NewServerCertificateName")
            }
            _ => iam_error(e, name),
        })
    }

    /// IAM `DeleteServerCertificate`: refused while a listener uses it (`DeleteConflict`, the
    /// listeners named).
    pub fn delete_certificate(&self, name: &str) -> Result<(), ControlError> {
        self.update(|s| s.delete_certificate(name))
            .map_err(|e| iam_error(e, name))
    }

    pub fn tag_certificate(&self, name: &str, tags: &[Tag]) -> Result<(), ControlError> {
        self.update(|s| s.tag_certificate(name, tags))
            .map_err(|e| iam_error(e, name))
    }

    pub fn untag_certificate(&self, name: &str, keys: &[String]) -> Result<(), ControlError> {
        self.update(|s| s.untag_certificate(name, keys))
            .map_err(|e| iam_error(e, name))
    }
}

/// Refuses a new certificate's name that another certificate has, in IAM's words (before the
/// upload is checked, so that the operator hears of the name first).
pub(crate) fn check_new_name(state: &State, name: &str) -> Result<(), ControlError> {
    if state.certificate_by_name(name).is_some() {
        return Err(ControlError::new(
            "EntityAlreadyExists",
            format!("The Server Certificate with name {name} already exists."),
        )
        .at("ServerCertificateName"));
    }
    Ok(())
}

/// The certificate a `SSLCertificateId` names: its ARN (as ELB expects), or, for people typing
/// by hand, its id or its name.
pub fn find_certificate<'s>(
    state: &'s State,
    account: &str,
    reference: &str,
) -> Option<&'s ServerCertificate> {
    state
        .certificates
        .values()
        .find(|c| crate::certificate_arn(account, c) == reference)
        .or_else(|| state.certificates.get(reference))
        .or_else(|| state.certificate_by_name(reference))
}

/// The id of the certificate `reference` names, or ELB's `CertificateNotFound`.
pub(crate) fn resolve(state: &State, account: &str, reference: &str) -> Result<String, ModelError> {
    find_certificate(state, account, reference)
        .map(|c| c.id.clone())
        .ok_or_else(|| ModelError::CertificateNotFound(reference.to_owned()))
}

/// The listeners that serve certificate `id`.
pub fn certificate_uses(state: &State, id: &str) -> Vec<CertificateUse> {
    state
        .load_balancers
        .values()
        .flat_map(|lb| {
            lb.listeners.iter().filter_map(move |l| {
                let at = l.certificates.iter().position(|c| c == id)?;
                Some(CertificateUse {
                    load_balancer: lb.name.clone(),
                    port: l.port,
                    is_default: at == 0,
                })
            })
        })
        .collect()
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
